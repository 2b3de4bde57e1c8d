/**
 * The environment of the Azurite child process: the parent's, minus whatever could switch on
 * telemetry or change Azurite's behaviour, plus explicit opt-outs.
 *
 * Azurite's CLI sends Application Insights telemetry unless `--disableTelemetry`. Used directly,
 * TableServer sends nothing unless `AzuriteTelemetryClient.init` is called with telemetry on (its
 * per-request middleware checks a client only `init` creates), and the child never even loads the
 * `applicationinsights` package (azurite-child-program.ts). This is the layer under those: should a
 * later Azurite load it some other way, a developer's own APPLICATIONINSIGHTS_* or OTEL_* settings
 * must not reach it, and its own opt-out switches are set.
 */

// Telemetry settings, Azurite's own settings (AZURITE_DB would switch it to MySQL; AZURITE_ACCOUNTS is
// set by the child from the IPC request), and NODE_OPTIONS (a `--require` of the parent's loader has no
// business in a plain JavaScript child).
const DROPPED = /^(APPLICATIONINSIGHTS_|APPLICATION_INSIGHTS_|AZURE_MONITOR_|OTEL_|AZURITE_|NODE_OPTIONS$)/i;

const TELEMETRY_OFF: Readonly<Record<string, string>> = {
  APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
  APPLICATIONINSIGHTS_SDKSTATS_DISABLED: 'true',
  APPLICATION_INSIGHTS_NO_STANDARD_METRICS: 'true',
  OTEL_SDK_DISABLED: 'true',
};

export function azuriteChildEnvironment(parent: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(parent)) if (!DROPPED.test(name)) env[name] = value;
  return { ...env, ...TELEMETRY_OFF };
}
