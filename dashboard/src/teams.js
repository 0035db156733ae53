// Which teams' documents the page may listen to, and how to ask Firestore for them.
//
// terraform/firestore.rules let a signed-in person read a run, schedule or catalog entry only when
// its `team` is one of the teams GET /api/me names, and rules are not filters: a query that could
// return another team's document is refused whole. So every list listener carries
// where('team', 'in', teams) (https://firebase.google.com/docs/firestore/security/rules-query).
// A query holds at most 30 disjunctions once its `in` clauses are multiplied out
// (https://firebase.google.com/docs/firestore/query-data/queries#limits_on_or_queries): a person on
// more teams gets several listeners whose rows are merged here.
export const MAX_DISJUNCTIONS = 30;

/** The caller's teams in groups small enough for one query beside `wheres`' other `in` clauses. */
export function teamChunks(teams, wheres = []) {
  const others = wheres.filter(([, op]) => op === 'in').reduce((n, [, , values]) => n * values.length, 1);
  const size = Math.max(1, Math.floor(MAX_DISJUNCTIONS / others));
  const chunks = [];
  for (let i = 0; i < teams.length; i += size) chunks.push(teams.slice(i, i + size));
  return chunks;
}

const millis = (value) => (value?.toMillis ? value.toMillis() : new Date(value ?? 0).getTime());

/** The rows of several listeners as one list: newest first by `orderField` when given, at most `max`. */
export function mergeRows(parts, { orderField = null, max = Infinity } = {}) {
  if (parts.length === 1) return parts[0].slice(0, max);
  const rows = parts.flat();
  if (orderField) rows.sort((a, b) => millis(b[orderField]) - millis(a[orderField]));
  return rows.slice(0, max);
}

/** What a person on no team is told instead of an empty page that looks broken. */
export function noTeamMessage(me) {
  const who = me?.email || 'This account';
  if (me?.platform_admin) {
    return `${who} is a platform admin, but this deployment declares no team: the page shows a team's runs, `
      + 'schedules and catalog to its members. Use the API or the CLI, or declare teams (docs/security.md, "Teams and roles").';
  }
  return `${who} is not on any team, so this page has nothing to show: it shows a team's runs, schedules and `
    + "catalog to the team's members. Ask an admin of your team to add you (docs/security.md, \"Teams and roles\").";
}
