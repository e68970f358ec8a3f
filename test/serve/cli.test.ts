/** `advml serve` option errors: a clear message and exit code 2, before anything starts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../helpers/cli.js';

test('advml serve --help, and bad options exit 2 naming the option', () => {
  const help = runCli(['serve', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: advml serve \[--port P\] \[--host ADDR\] \[--model NAME_OR_CHECKPOINT \.\.\.\]/);
  assert.match(runCli(['--help']).stdout, /^ {2}serve {2,}a web page/m);
  const cases: [string[], RegExp][] = [
    [['serve', '--model', 'no-such-model'], /--model 'no-such-model' is neither a checkpoint file nor a model name/],
    [['serve', '--port', '70000'], /--port must be an integer in \[0, 65535\], got '70000'/],
    [['serve', '--port', 'eighty'], /--port must be an integer in \[0, 65535\], got 'eighty'/],
    [['serve', '--port', '0x1F90'], /--port must be an integer in \[0, 65535\], got '0x1F90'/],
    [['serve', '--max-pending', '0'], /--max-pending must be a positive integer/],
    [['serve', '--timeout=-5'], /--timeout must be a positive number/],
    [['serve', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const r = runCli(args, { timeoutMs: 60_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});
