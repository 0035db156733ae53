// Firestore listeners (the Firebase web SDK; the emulator locally). The page never writes to Firestore.
import { initializeApp } from 'firebase/app';
import {
  collection, connectFirestoreEmulator, doc, initializeFirestore, limit, onSnapshot, orderBy, query, where,
} from 'firebase/firestore';
import { mergeRows, teamChunks } from './teams.js';

let db = null;
// The teams GET /api/me says the caller may view (main.js sets them before any listener starts).
let myTeams = [];

export function setTeams(teams) {
  myTeams = [...teams];
}

export async function connect(config) {
  let firebase = config.firebase || { projectId: config.projectId, apiKey: 'local-emulator' };
  if (!firebase.apiKey && config.authEmulatorHost) firebase = { ...firebase, apiKey: 'auth-emulator' };
  if (!firebase.apiKey) {
    throw new Error('this deployment has no Firebase web configuration (TRAINYARD_FIREBASE_API_KEY is empty): '
      + 'the page cannot sign anyone in — see docs/dashboard.md, "In the cloud"');
  }
  const app = initializeApp(firebase);
  // Locally the emulator speaks plain HTTP: long polling starts at once, where the default
  // auto-detection first tries a streaming connection and costs seconds before the first snapshot.
  db = initializeFirestore(app, config.firestoreEmulatorHost ? { experimentalAutoDetectLongPolling: false } : {});
  if (config.firestoreEmulatorHost) {
    const [host, port] = config.firestoreEmulatorHost.split(':');
    // Local mode: the emulator evaluates the security rules against this (unsigned) developer
    // identity, like a signed-in user. With the Auth emulator the signed-in user's own token is used.
    connectFirestoreEmulator(db, host, Number(port), config.authMode === 'local' ? {
      mockUserToken: { sub: config.devIdentity || 'developer', email: config.devIdentity || 'developer@localhost', email_verified: true },
    } : {});
  }
  if (config.authMode !== 'local') {
    const { signIn } = await import('./auth.js');
    return signIn(app, config);
  }
  return { identity: config.devIdentity, token: async () => config.devToken };
}

// A deleted run (restorable for its grace period, docs/run-actions.md) is gone from the page as from the API.
const visible = (run) => run.deleted !== true;
const docs = (snap) => snap.docs.map((d) => ({ id: d.id, ...d.data() })).filter(visible);

function listen(q, onData, onError) {
  return onSnapshot(q, (snap) => onData(docs(snap), snap), (err) => onError?.(err));
}

// A list listener over the caller's teams: where('team', 'in', …) on every query, which is what
// terraform/firestore.rules can prove (dashboard/src/teams.js says why, and why several queries
// for someone on many teams). `build(teamClause)` makes the query for one group of teams.
function listenTeams(wheres, build, onData, onError, merge = {}) {
  const chunks = teamChunks(myTeams, wheres);
  if (!chunks.length) {
    onData([]);
    return () => {};
  }
  const parts = new Array(chunks.length).fill(null);
  const stops = chunks.map((chunk, i) => listen(build(where('team', 'in', chunk)), (rows) => {
    parts[i] = rows;
    if (parts.every(Boolean)) onData(mergeRows(parts, merge));
  }, onError));
  return () => stops.forEach((stop) => stop());
}

// The newest `max` runs matching the equality filters, live: the run list merges them into the first
// page it reads from the API (runlist.js); the API does the search and every later page.
export function listenRuns(wheres, max, onData, onError) {
  const clauses = wheres.map(([f, op, v]) => where(f, op, v));
  return listenTeams(wheres, (team) => query(collection(db, 'training_runs'), team, ...clauses,
    orderBy('created_at', 'desc'), limit(max)), onData, onError, { orderField: 'created_at', max });
}

// The newest `max` versions, live: the registry pages the rest from the API (runlist.js).
export function listenRegistry(max, onData, onError) {
  const statuses = ['completed', 'not_blessed'];
  return listenTeams([['status', 'in', statuses]], (team) => query(collection(db, 'training_runs'), team,
    where('status', 'in', statuses), orderBy('created_at', 'desc'), limit(max)), onData, onError,
  { orderField: 'created_at', max });
}

export function listenRun(runId, onData, onError) {
  return onSnapshot(doc(db, 'training_runs', runId),
    (snap) => onData(snap.exists() && visible(snap.data()) ? { id: snap.id, ...snap.data() } : null),
    (err) => onError?.(err));
}

export function listenHistory(runId, attempt, onData, onError) {
  return listen(query(collection(db, 'training_runs', runId, 'history'), where('attempt', '==', attempt)),
    (rows) => onData(rows.sort((a, b) => a.epoch - b.epoch)), onError);
}

// The newest `max` active and paused schedules, live: the schedules section pages the rest from the API
// (pages.js), and merges these into its first page.
export function listenSchedules(max, onData, onError) {
  const statuses = ['active', 'paused'];
  return listenTeams([['status', 'in', statuses]], (team) => query(collection(db, 'training_schedules'), team,
    where('status', 'in', statuses), orderBy('created_at', 'desc'), limit(max)), onData, onError,
  { orderField: 'created_at', max });
}

// What one catalog listener holds at most (the experiments chapter says "500+" past it and ranks the
// server's best of every experiment beside it).
export const LISTENED_CATALOG = 500;

export function listenCatalog(kind, onData, onError) {
  return listenTeams([], (team) => query(collection(db, kind), team, limit(LISTENED_CATALOG)), onData, onError);
}
