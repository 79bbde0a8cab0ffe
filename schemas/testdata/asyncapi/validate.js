// Validates an AsyncAPI document with the AsyncAPI project's parser (file
// $refs resolved) and prints one JSON line: {"version", "channels",
// "diagnostics": [{severity, code, message, path}]}; severity 0 is an
// error, 1 a warning, 2 and 3 information and hints.
const path = require('path');
const { Parser, fromFile } = require('@asyncapi/parser');

async function main() {
  const parser = new Parser();
  const { document, diagnostics } = await fromFile(parser, path.resolve(process.argv[2])).parse();
  const out = {
    diagnostics: diagnostics.map((d) => ({ severity: d.severity, code: String(d.code), message: d.message, path: d.path.join('/') })),
  };
  if (document) {
    out.version = document.version();
    out.channels = document.channels().all().map((c) => c.address());
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((err) => {
  process.stderr.write(String((err && err.stack) || err) + '\n');
  process.exit(2);
});
