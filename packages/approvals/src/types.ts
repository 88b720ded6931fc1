import type { RouteInput } from "@bottlekit/egress-dlp";

/** What a proposal asks to change. Values never appear: credentials by name only. */
export type Change =
  /** Add a route, widen an existing one (same host and port, replaced), or remove one. */
  | { kind: "route"; op: "add" | "widen" | "remove"; route: RouteInput }
  /** Attach a host-managed credential to this bottle, bound to one host. */
  | { kind: "provider"; provider: string; host: string }
  /** Raise a provider's token budget to `tokens`. */
  | { kind: "budget"; provider: string; tokens: number }
  /** A request held by a DLP `supervise` route: release it once, or refuse it. */
  | {
      kind: "dlp_hold";
      host: string;
      port: number;
      method: string;
      path: string;
      findings: { detector: string; rule: string; surface: string; fingerprint: string }[];
    };

export type ChangeKind = Change["kind"];

export type ProposalStatus = "pending" | "approved" | "denied" | "expired";

/**
 * How an approval holds: `session` (until the session ends), `for` (until `until`), `persist`
 * (written into the bottle's manifest, and live for the session), `once` (a released DLP hold),
 * `auto` (approved without an operator because it widens nothing; live for the session).
 */
export type Scope = "session" | "for" | "persist" | "once" | "auto";

/** One way a change widens the bottle (kinds from `bottle explain`, plus credentials and budgets). */
export interface Widening {
  kind: string;
  host: string;
  detail: string;
}

export interface Proposal {
  id: string;
  sessionId: string;
  bottle: string;
  agent?: string;
  change: Change;
  justification: string;
  status: ProposalStatus;
  createdAt: string;
  /** A pending proposal is denied (fail closed) at this time. */
  expiresAt: string;
  /** Empty when the change widens nothing. */
  widening: Widening[];
  decidedBy?: "operator" | "auto" | "timeout" | "session-ended";
  decidedAt?: string;
  scope?: Scope;
  /** End of a `for` approval. */
  until?: string;
  reason?: string;
  /** When the controller put it in force on the live session. */
  appliedAt?: string;
  /** When it stopped being in force (expiry, session end). */
  revertedAt?: string;
  /** Approved and in force in the proxy now. */
  inForce: boolean;
}

export interface AuditRecord {
  seq: number;
  time: string;
  proposalId: string;
  event:
    | "proposed"
    | "rate_limited"
    | "approved"
    | "auto_approved"
    | "denied"
    | "expired"
    | "applied"
    | "reverted"
    | "persisted"
    | "apply_failed";
  actor: "agent" | "operator" | "controller";
  detail?: Record<string, unknown>;
}
