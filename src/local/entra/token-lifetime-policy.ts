/**
 * The STS's clock rules, shared by every place that checks a presented assertion or issues a token, so
 * that client assertions and On-Behalf-Of user assertions get the same tolerance and both grants issue
 * tokens of the same lifetime.
 *
 * @packageDocumentation
 */

/** Clock skew tolerated on assertion `exp`/`nbf`: 5 minutes, the Microsoft libraries' default (the STS's own value is unconfirmed). */
export const CLOCK_SKEW_SECONDS = 300;

/** Entra's default access-token lifetime is random between 60 and 90 minutes; clients must not assume a fixed one. */
export function lifetimeForIssuedToken(): number {
  return 3600 + Math.floor(Math.random() * 1800);
}
