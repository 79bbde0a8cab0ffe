// An ESME built on node-smpp: binds as transceiver to the address in argv, submits
// the parts given as JSON in argv (each {udh: hex, message, data_coding}), prints
// each submit_sm_resp and each deliver_sm as node-smpp decoded them (JSON lines),
// acknowledges deliver_sm, and exits after argv[3] of them.
const smpp = require('smpp');

const [addr, partsJSON, wantDelivers] = process.argv.slice(2);
const parts = JSON.parse(partsJSON);
let delivers = 0;
const session = smpp.connect('smpp://' + addr);
session.on('error', (e) => { console.log(JSON.stringify({error: String(e)})); process.exit(1); });
session.on('deliver_sm', (pdu) => {
  const sm = pdu.short_message || {};
  console.log(JSON.stringify({
    deliver: pdu.receipted_message_id,
    esm_class: pdu.esm_class,
    message_state: pdu.message_state,
    message: typeof sm.message === 'string' ? sm.message : String(sm.message),
  }));
  session.send(pdu.response());
  if (++delivers >= Number(wantDelivers)) {
    session.unbind(() => { session.close(); process.exit(0); });
  }
});
session.bind_transceiver({system_id: 'node', password: 'pw'}, (pdu) => {
  if (pdu.command_status !== 0) {
    console.log(JSON.stringify({bind: pdu.command_status}));
    process.exit(1);
  }
  for (const p of parts) {
    const sm = {message: p.message};
    if (p.udh) sm.udh = Buffer.from(p.udh, 'hex');
    session.submit_sm({
      destination_addr: '447700900123',
      data_coding: p.data_coding,
      registered_delivery: 1,
      short_message: sm,
    }, (resp) => console.log(JSON.stringify({submit_resp: resp.message_id, status: resp.command_status})));
  }
});
