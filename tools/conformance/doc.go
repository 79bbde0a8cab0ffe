// Package conformance holds sluice's SMPP conformance matrix: one sender and
// one dlr, in the test's process, against SMSCs that sluice does not contain
// (node-smpp servers scripted by pkg/smpp/nodesmpp/testdata/matrix.js), each
// with one habit of a real SMSC. In every case every message must end with
// exactly one final status, the one its receipt says. The README's
// "SMSC conformance" table lists the cases.
package conformance
