#!/usr/bin/env node
/** The `tollgate` command. Each command group lives in its own module under commands/. */
import { Command, CommanderError } from 'commander';
import { registerCreateSignaturePayload } from './commands/create-signature-payload.js';
import { registerEvaluate } from './commands/evaluate.js';
import { registerPolicy } from './commands/policy.js';
import { registerGcloudConfig, registerServe } from './commands/serve.js';
import { registerIam } from './commands/iam.js';
import { registerProjects } from './commands/projects.js';
import { registerK8s } from './commands/k8s.js';
import { registerAudit } from './commands/audit.js';
import { registerRun } from './commands/run.js';
import { CliExit, EXIT } from './exit-codes.js';

export function buildProgram(): Command {
  const program = new Command('tollgate')
    .description('Tollgate: self-hosted Binary Authorization')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerPolicy(program);
  registerCreateSignaturePayload(program);
  registerEvaluate(program);
  registerServe(program);
  registerGcloudConfig(program);
  registerProjects(program);
  registerIam(program);
  registerAudit(program);
  registerK8s(program);
  registerRun(program);
  // Sub-commands inherit exitOverride so usage errors reach main and exit 2, not commander's 1.
  for (const c of program.commands) c.exitOverride();
  for (const c of program.commands.flatMap((c) => c.commands)) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
  } catch (e) {
    if (e instanceof CliExit) {
      process.stderr.write(`tollgate: ${e.message}\n`);
      return e.code;
    }
    if (e instanceof CommanderError) {
      // Help and version are successes; everything else commander reports is a usage error.
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? EXIT.OK : EXIT.USAGE;
    }
    process.stderr.write(`tollgate: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT.USAGE;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
