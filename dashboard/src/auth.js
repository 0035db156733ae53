// Cloud sign-in: Firebase Auth with Google (docs/dashboard.md). Firestore reads run as the Firebase
// user (security rules check request.auth); API calls send the Firebase ID token, which the SDK
// refreshes by itself before it expires, so a session lasts the working day (review B2). A signed-out
// visitor sees the sign-in screen, never a blank page.
import {
  GoogleAuthProvider, connectAuthEmulator, getAuth, onAuthStateChanged, signInWithCredential, signInWithPopup, signOut,
} from 'firebase/auth';
import { $ } from './ui.js';

function signInScreen(config, message) {
  const screen = $('#signin');
  screen.hidden = false;
  const domain = config.allowedDomain ? ` with your @${config.allowedDomain} Google account` : ' with Google';
  screen.innerHTML = `<div class="signin-box"><h2>Trainyard · Training</h2>
    <p>Sign in${domain} to watch and start training runs.</p>
    <button id="signin-google" class="btn btn-primary">Sign in with Google</button>
    <p id="signin-error" class="error" ${message ? '' : 'hidden'}>${message || ''}</p></div>`;
  return screen;
}

// Resolves with the signed-in user once there is one: at once for a kept session, else after the
// person clicks "Sign in with Google" (a popup; browsers block popups not opened by a click).
function waitForUser(auth, config) {
  return new Promise((resolve) => {
    const stop = onAuthStateChanged(auth, (user) => {
      if (user) {
        stop();
        $('#signin').hidden = true;
        resolve(user);
        return;
      }
      const screen = signInScreen(config);
      screen.querySelector('#signin-google').addEventListener('click', async () => {
        const error = screen.querySelector('#signin-error');
        error.hidden = true;
        try {
          await signInWithPopup(auth, new GoogleAuthProvider());
        } catch (err) {
          error.hidden = false;
          error.textContent = `Sign-in failed: ${err.code || err.message}`;
        }
      });
    });
  });
}

export async function signIn(app, config) {
  const auth = getAuth(app);
  if (config.authEmulatorHost) {
    connectAuthEmulator(auth, `http://${config.authEmulatorHost}`, { disableWarnings: true });
    // The popup's last step, for tests on the Auth emulator only: the popup itself needs Google's
    // gapi loader (apis.google.com), which an offline machine cannot reach. The emulator takes an
    // unsigned Google ID token holding the claims, as its own sign-in widget sends.
    window.__trainyard.emulatorSignIn = (email) => signInWithCredential(auth, GoogleAuthProvider.credential(
      JSON.stringify({ sub: `google-${email}`, email, email_verified: true })));
  }
  const user = await waitForUser(auth, config);
  // Signed out later (here, in another tab, or the session revoked): back to the sign-in screen.
  onAuthStateChanged(auth, (now) => { if (!now) location.reload(); });
  return {
    identity: user.email,
    // forceRefresh: after the API refused a token (401), get a fresh one from Firebase.
    token: async (forceRefresh = false) => (auth.currentUser ? auth.currentUser.getIdToken(forceRefresh) : null),
    signOut: () => signOut(auth),
    auth,
  };
}
