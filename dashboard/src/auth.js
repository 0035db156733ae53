// Cloud sign-in: Firebase Auth with Google. Firestore reads use the Firebase session (security rules
// check request.auth); API calls send the Google ID token, which the API verifies (shared/identity.py).
import { GoogleAuthProvider, getAuth, onAuthStateChanged, signInWithPopup } from 'firebase/auth';

export async function signIn(app, config) {
  const auth = getAuth(app);
  const provider = new GoogleAuthProvider();
  if (config.googleClientId) provider.setCustomParameters({ client_id: config.googleClientId });
  let googleIdToken = sessionStorage.getItem('trainyard.googleIdToken');
  const user = await new Promise((resolve) => onAuthStateChanged(auth, resolve));
  if (!user || !googleIdToken) {
    const result = await signInWithPopup(auth, provider);
    googleIdToken = GoogleAuthProvider.credentialFromResult(result)?.idToken;
    sessionStorage.setItem('trainyard.googleIdToken', googleIdToken || '');
  }
  return { identity: auth.currentUser?.email, token: async () => googleIdToken };
}
