// Run as a separate process by the cross-process test: decides a proposal in the queue the way
// `bottle approvals approve` does, with no control socket to tell the controller.
import { ApprovalStore, decide } from "../src/index.ts";

const [home, id] = process.argv.slice(2) as [string, string];
const store = ApprovalStore.open(home);
const r = await decide(store, id, { home, approve: true, scope: "session", waitMs: 10_000 });
store.close();
process.stdout.write(
  `${JSON.stringify({ inForce: r.proposal.inForce, controller: r.controller })}\n`,
);
