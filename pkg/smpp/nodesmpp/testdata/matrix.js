// SMSCs built on node-smpp, one per case named in argv[2] (a JSON list), each
// with one habit of a real SMSC (see CASES). Prints {"case", "listening": port}
// for each, then one line per event: {"case", "submit": id, "dest"} for every
// submit_sm answered with an id, {"case", "receipt": id, "status"} for every
// deliver_sm/data_sm answered, {"case", "bind": n} for every bind.
//
// What a receipt says is decided by the destination's last digit, so that the
// test knows the final status each message must end with: 1 UNDELIV, 2
// EXPIRED, 3 REJECTD, anything else DELIVRD (for a long message only its
// second part says so, the others DELIVRD). A destination ending in 5 is
// refused by nonzero_resp.
const smpp = require('smpp');

const STATES = {DELIVRD: 2, EXPIRED: 3, UNDELIV: 5, ACCEPTD: 6, REJECTD: 8, ENROUTE: 1};

function statFor(dest, part) {
  if (part !== undefined && part !== 2) return 'DELIVRD';
  switch (dest.slice(-1)) {
    case '1': return 'UNDELIV';
    case '2': return 'EXPIRED';
    case '3': return 'REJECTD';
    default: return 'DELIVRD';
  }
}

const hex = (n) => n.toString(16);
const pad = (s, w) => s.padStart(w, '0');

// Each case: resp(n) is the submit_sm_resp id of the n-th submit; text(id) and
// tlv(id) the receipt's forms of it (null: left out); the rest are habits.
const base = {
  resp: (n) => hex(0x10000000 + n).toUpperCase(),
  text: (id) => BigInt('0x' + id).toString(10),
  tlv: (id) => id,
};
const CASES = {
  // Hex resp, decimal text, the TLV as the resp (SMPP 3.4).
  hex_resp_decimal_text: {},
  campaign: {},
  // Lower-case hex resp and TLV, upper-case hex text.
  hex_case: {resp: (n) => hex(0xabc000 + n), text: (id) => id.toUpperCase(), tlv: (id) => id},
  // Decimal everywhere, zero-padded to different widths.
  leading_zeros: {resp: (n) => pad(String(n), 10), text: (id) => String(Number(id)), tlv: (id) => pad(id, 16)},
  // 24-digit decimal ids, beyond 64 bits.
  long_ids: {resp: (n) => '9' + pad(String(n), 23), text: (id) => '0' + id, tlv: (id) => id},
  // Ids that are no number, in mixed case; the text lower-cases them.
  non_numeric: {resp: (n) => 'Msg-' + hex(n) + '-Zq', text: (id) => id.toLowerCase(), tlv: (id) => id},
  // Hex resp and text, the TLV in decimal.
  tlv_text_bases: {text: (id) => id, tlv: (id) => BigInt('0x' + id).toString(10)},
  // Empty short_message: receipted_message_id and message_state only.
  tlv_only: {text: null},
  // No TLVs: the text only.
  text_only: {tlv: null},
  // The receipt goes out before the submit_sm_resp.
  receipt_before_resp: {receiptFirst: true},
  // Every receipt twice.
  duplicate_receipt: {copies: 2},
  // ENROUTE, then ACCEPTD, then the final receipt.
  intermediate: {intermediate: ['ENROUTE', 'ACCEPTD']},
  // Long messages: a receipt per part (see statFor).
  long_parts: {},
  // Receipts as data_sm, TLVs only.
  data_sm: {dataSM: true},
  // The receipt's sequence number is the submit's, sent while the submit is
  // unanswered.
  seq_collide: {receiptFirst: true, sameSeq: true},
  // The SMSC sends enquire_link itself, and unbinds after the 5th submit;
  // receipts still owed go out on the next bind.
  smsc_unbind: {enquire: true, unbindAfter: 5},
  // The first submit of each message is answered with generic_nack
  // (ESME_RSYSERR), the retry with an id.
  generic_nack: {nackFirst: true},
  // Destinations ending in 5 are refused with ESME_RINVDSTADR and an id,
  // followed by a REJECTD receipt for that id.
  nonzero_resp: {refuse: '5'},
  // After the 5th submit the connection drops before the receipts sent are
  // answered; every receipt not answered with status 0 is sent again on the
  // next bind.
  resend_next_bind: {dropAfter: 5},
  // After the 5th submit the SMSC stops reading for a second while it sends
  // 20,000 MO deliver_sm, so that the ESME's answers fill its TCP window.
  stops_reading: {stopAfter: 5, flood: 20000},
};

function startCase(name) {
  const c = Object.assign({}, base, CASES[name]);
  if (!CASES[name]) throw new Error('unknown case ' + name);
  const st = {next: 0, submits: 0, binds: 0, owed: new Map(), seen: new Set(), session: null};
  const say = (o) => console.log(JSON.stringify(Object.assign({case: name}, o)));

  function receiptPDU(r, stat) {
    const textID = c.text ? c.text(r.id) : null;
    const tlvID = c.tlv ? c.tlv(r.id) : null;
    const opts = {
      source_addr: r.dest, destination_addr: r.source, esm_class: 0x04,
    };
    if (tlvID !== null) {
      opts.receipted_message_id = tlvID;
      opts.message_state = STATES[stat];
    }
    if (c.dataSM) {
      return new smpp.PDU('data_sm', Object.assign(opts, {receipted_message_id: tlvID || r.id, message_state: STATES[stat]}));
    }
    opts.short_message = textID === null ? '' :
      'id:' + textID + ' sub:001 dlvrd:' + (stat === 'DELIVRD' ? '001' : '000') +
      ' submit date:2612030900 done date:2612030901 stat:' + stat + ' err:' + (stat === 'DELIVRD' ? '000' : '001') + ' text:';
    return new smpp.PDU('deliver_sm', opts);
  }

  // send delivers one receipt pdu on the current session; one not answered
  // with status 0 stays owed for the next bind.
  function sendReceipt(r, stat, seq) {
    const s = st.session;
    const key = r.id + '/' + stat;
    st.owed.set(key, {r, stat});
    if (!s) return;
    const p = receiptPDU(r, stat);
    if (seq) p.sequence_number = seq;
    s.send(p, (resp) => {
      if (resp.command_status === 0) st.owed.delete(key);
      say({receipt: r.id, stat, status: resp.command_status});
    });
  }

  function receipts(r, seq) {
    for (const i of c.intermediate || []) sendReceipt(r, i);
    for (let k = 0; k < (c.copies || 1); k++) {
      sendReceipt(r, r.stat, k === 0 ? seq : undefined);
    }
  }

  function onSubmit(s, pdu) {
    st.submits++;
    const sm = pdu.short_message || {};
    let part;
    for (const u of sm.udh || []) {
      if (u[0] === 0x00) part = u[4];
      if (u[0] === 0x08) part = u[5];
    }
    if (pdu.sar_segment_seqnum) part = pdu.sar_segment_seqnum;
    const text = typeof sm.message === 'string' ? sm.message : '';
    if (c.nackFirst && !st.seen.has(text)) {
      st.seen.add(text);
      say({nack: text.slice(0, 24)});
      s.send(new smpp.PDU('generic_nack', {sequence_number: pdu.sequence_number, command_status: 0x08}));
      return;
    }
    const id = c.resp(++st.next);
    const r = {id, dest: pdu.destination_addr, source: pdu.source_addr, stat: statFor(pdu.destination_addr, part)};
    if (c.refuse && pdu.destination_addr.endsWith(c.refuse)) {
      say({refused: id, dest: r.dest});
      // node-smpp leaves the body out of a non-zero response: patch the
      // status into an encoded one that carries the id.
      const b = pdu.response({message_id: id}).toBuffer();
      b.writeUInt32BE(0x0B, 8);
      s.socket.write(b);
      sendReceipt(r, 'REJECTD');
      return;
    }
    say({submit: id, dest: r.dest, part});
    if (c.receiptFirst) {
      receipts(r, c.sameSeq ? pdu.sequence_number : undefined);
      s.send(pdu.response({message_id: id}));
    } else {
      s.send(pdu.response({message_id: id}));
      receipts(r);
    }
    if (c.unbindAfter && st.submits === c.unbindAfter) {
      st.session = null; // receipts from here on are owed to the next bind
      s.unbind();
    }
    if (c.dropAfter && st.submits === c.dropAfter) {
      st.session = null;
      s.socket.write(Buffer.alloc(0), () => s.destroy());
    }
    if (c.stopAfter && st.submits === c.stopAfter) {
      s.pause();
      for (let k = 0; k < c.flood; k++) {
        s.deliver_sm({source_addr: '447700900' + pad(String(k % 1000), 3), destination_addr: '12345', short_message: 'mo ' + k});
      }
      s.socket.write(Buffer.alloc(0), () => setTimeout(() => s.resume(), 1000));
    }
  }

  const server = smpp.createServer({debug: false}, (s) => {
    s.on('error', () => {});
    const bound = (pdu) => {
      s.send(pdu.response());
      st.binds++;
      st.session = s;
      say({bind: st.binds});
      for (const [, o] of [...st.owed]) sendReceipt(o.r, o.stat);
      if (c.enquire) {
        const t = setInterval(() => s.enquire_link(), 100);
        s.on('close', () => clearInterval(t));
      }
    };
    s.on('bind_transceiver', bound);
    s.on('enquire_link', (pdu) => s.send(pdu.response()));
    s.on('unbind', (pdu) => { s.send(pdu.response()); s.close(); });
    s.on('unbind_resp', () => s.close());
    s.on('submit_sm', (pdu) => onSubmit(s, pdu));
    s.on('close', () => { if (st.session === s) st.session = null; });
  });
  server.listen(0, '127.0.0.1', () => say({listening: server.address().port}));
}

for (const name of JSON.parse(process.argv[2])) startCase(name);
