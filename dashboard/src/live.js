// Firestore listeners (the Firebase web SDK; the emulator locally). The page never writes to Firestore.
import { initializeApp } from 'firebase/app';
import {
  collection, connectFirestoreEmulator, doc, initializeFirestore, limit, onSnapshot, orderBy, query, where,
} from 'firebase/firestore';

let db = null;

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

export function listenRuns(wheres, max, onData, onError) {
  const clauses = wheres.map(([f, op, v]) => where(f, op, v));
  return listen(query(collection(db, 'training_runs'), ...clauses, orderBy('created_at', 'desc'), limit(max)), onData, onError);
}

export function listenRegistry(onData, onError) {
  return listen(query(collection(db, 'training_runs'), where('status', 'in', ['completed', 'not_blessed']),
    orderBy('created_at', 'desc'), limit(300)), onData, onError);
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

export function listenSchedules(onData, onError) {
  return listen(query(collection(db, 'training_schedules'), where('status', 'in', ['active', 'paused']), limit(100)), onData, onError);
}

export function listenCatalog(kind, onData, onError) {
  return listen(query(collection(db, kind), limit(500)), onData, onError);
}
