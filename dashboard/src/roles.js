import { roleOrder } from './format.js';

// What the caller may do on a run's team (GET /api/me's `roles`: {team: role}), so the page offers only what
// the API would allow. The API checks again on every call (shared/services/access.py); this only spares a
// person a button that can only be refused.

/** Whether `me` holds at least `needed` on `team`; a platform admin is admin on every team. Unknown (no `me`
 * yet): offered, and the API answers. */
export function mayAct(me, team, needed) {
  if (!me) return true;
  if (me.platform_admin) return true;
  const roles = roleOrder(); // the server's, weakest first: each may do what those before it may
  const held = roles.indexOf(me.roles?.[team]);
  return held >= 0 && held >= roles.indexOf(needed);
}

// The role each run action beyond the card's needs (docs/security.md, "Teams and roles").
export const NEEDS = { rollback: 'deployer', 'batch-predictions': 'deployer' };
