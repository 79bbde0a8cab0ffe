// An SMSC built on node-smpp: accepts one bind, prints each submit_sm as node-smpp
// decoded it (one JSON line), answers it with a message id and sends a delivery
// receipt for it. Prints {"listening": port} first.
const smpp = require('smpp');

let next = 1;
const server = smpp.createServer({debug: false}, (session) => {
  session.on('bind_transceiver', (pdu) => session.send(pdu.response()));
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('submit_sm', (pdu) => {
    const id = 'n' + (next++);
    const sm = pdu.short_message || {};
    const payload = pdu.message_payload;
    console.log(JSON.stringify({
      submit: id,
      dest: pdu.destination_addr,
      data_coding: pdu.data_coding,
      esm_class: pdu.esm_class,
      udh: (sm.udh || []).map((u) => Buffer.from(u).toString('hex')),
      message: typeof sm.message === 'string' ? sm.message : (sm.message ? sm.message.toString('hex') : ''),
      payload: payload ? (payload.message !== undefined ? payload.message : String(payload)) : undefined,
      registered_delivery: pdu.registered_delivery,
    }));
    session.send(pdu.response({message_id: id}));
    session.deliver_sm({
      source_addr: pdu.destination_addr,
      destination_addr: pdu.source_addr,
      esm_class: 0x04,
      short_message: 'id:' + id + ' sub:001 dlvrd:001 submit date:2611270900 done date:2611270901 stat:DELIVRD err:000 text:',
      receipted_message_id: id,
      message_state: 2,
    }, (resp) => console.log(JSON.stringify({deliver_sm_resp: resp.command_status})));
  });
});
server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({listening: server.address().port}));
});
