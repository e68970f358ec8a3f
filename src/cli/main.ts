#!/usr/bin/env node
/** The advml command line: `advml <command> [options]`. */
import { UsageError } from './command.js';
import { COMMANDS, usage } from './commands.js';

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const load = COMMANDS[name]?.load;
  if (!load) {
    console.error(`advml: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  // Only options before '--' belong to this command ('advml launch ... -- train --help').
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  if (own.includes('--help') || own.includes('-h')) {
    console.log((await load()).help);
    return 0;
  }
  try {
    return await (await load()).run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(e.message);
      return 2;
    }
    console.error(`advml ${name}: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
