// An ESME on node-smpp (an independent SMPP implementation) for the SMPP front
// door's interop test. argv: address, system_id, password, the submits as JSON
// (each {source, dest, udh: hex, message, data_coding, registered_delivery}),
// and how many deliver_sm to wait for. Prints one JSON line per submit_sm_resp
// and per deliver_sm, acknowledges each deliver_sm, unbinds after the last.
const smpp = require('smpp');

const [addr, systemID, password, submitsJSON, wantDelivers] = process.argv.slice(2);
const submits = JSON.parse(submitsJSON);
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
session.bind_transceiver({system_id: systemID, password: password}, (pdu) => {
  console.log(JSON.stringify({bind: pdu.command_status}));
  if (pdu.command_status !== 0) process.exit(1);
  submits.forEach((s, i) => {
    const sm = {message: s.message};
    if (s.udh) sm.udh = Buffer.from(s.udh, 'hex');
    session.submit_sm({
      source_addr: s.source,
      destination_addr: s.dest,
      dest_addr_ton: 1,
      data_coding: s.data_coding,
      registered_delivery: s.registered_delivery,
      short_message: sm,
    }, (resp) => console.log(JSON.stringify({submit: i, id: resp.message_id, status: resp.command_status})));
  });
});
