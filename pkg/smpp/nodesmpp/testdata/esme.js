// An ESME built on node-smpp. argv: address, system_id, password, the submits
// as JSON and how many deliver_sm to wait for. Each submit is a submit_sm's
// fields as node-smpp names them, with the short message as udh (hex) and
// message. Binds as transceiver, prints the bind_resp status, then one JSON
// line per submit_sm_resp and per deliver_sm as node-smpp decoded them,
// acknowledges each deliver_sm, and unbinds after the last.
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
  submits.forEach(({udh, message, ...fields}, i) => {
    const sm = {message: message};
    if (udh) sm.udh = Buffer.from(udh, 'hex');
    session.submit_sm({...fields, short_message: sm},
      (resp) => console.log(JSON.stringify({submit_resp: i, id: resp.message_id, status: resp.command_status})));
  });
});
