import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { describeError } from './api';
import { type Caller, forgetCredential, identify, storeCredential, storedCredential } from './auth';
import { Loading } from './components';
import { OverviewPage } from './pages/overview';
import { SessionPage } from './pages/session';
import { SystemPage } from './pages/system';
import { UsagePage } from './pages/usage';
import { UserPage } from './pages/user';
import { UsersPage } from './pages/users';
import { href, type Route, useRoute } from './router';
import './styles.css';

function SignIn(props: { onSignedIn: (caller: Caller) => void; error?: unknown }) {
  const [credential, setCredential] = useState('');
  const [error, setError] = useState<unknown>(props.error);
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin" data-testid="page-signin">
      <h1>Threadline</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const value = credential.trim();
          if (value === '') return;
          setBusy(true);
          identify(value).then(
            (caller) => {
              storeCredential(value);
              props.onSignedIn(caller);
            },
            (err: unknown) => {
              setError(err);
              setBusy(false);
            },
          );
        }}
      >
        <label for="credential">API key or user token</label>
        <input
          id="credential"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={credential}
          onInput={(e) => setCredential(e.currentTarget.value)}
          data-testid="credential"
        />
        <button type="submit" disabled={busy} data-testid="sign-in">
          {busy ? 'Checking…' : 'Sign in'}
        </button>
        {error !== undefined && (
          <div class="error" role="alert" data-testid="signin-error">
            {describeError(error)}
          </div>
        )}
        <p class="muted small">
          Kept in this tab's sessionStorage only; it is sent as <code>Authorization: Bearer</code> to this
          gateway's API, which decides what it may see.
        </p>
      </form>
    </main>
  );
}

const NAV: { label: string; route: Route }[] = [
  { label: 'Overview', route: { page: 'overview' } },
  { label: 'Users', route: { page: 'users' } },
  { label: 'Usage', route: { page: 'usage' } },
  { label: 'System', route: { page: 'system' } },
];

function Page(props: { caller: Caller; route: Route }) {
  const { caller, route } = props;
  switch (route.page) {
    case 'overview':
      return <OverviewPage caller={caller} />;
    case 'users':
      return <UsersPage caller={caller} />;
    case 'user':
      return <UserPage key={route.userId} caller={caller} userId={route.userId} />;
    case 'session':
      return <SessionPage key={route.sessionId} caller={caller} sessionId={route.sessionId} />;
    case 'usage':
      return <UsagePage caller={caller} />;
    case 'system':
      return <SystemPage caller={caller} />;
    default: {
      const never: never = route;
      return never;
    }
  }
}

function App() {
  const route = useRoute();
  const [caller, setCaller] = useState<Caller | undefined>(undefined);
  const [checking, setChecking] = useState(storedCredential() !== undefined);
  const [restoreError, setRestoreError] = useState<unknown>(undefined);

  // A reload keeps the tab signed in: the stored credential is asked again (it may have expired).
  useEffect(() => {
    const stored = storedCredential();
    if (stored === undefined) return;
    identify(stored).then(
      (c) => {
        setCaller(c);
        setChecking(false);
      },
      (error: unknown) => {
        forgetCredential();
        setRestoreError(error);
        setChecking(false);
      },
    );
  }, []);

  if (checking) return <Loading />;
  if (caller === undefined) return <SignIn onSignedIn={setCaller} error={restoreError} />;
  const current = route.page === 'user' || route.page === 'session' ? 'users' : route.page;
  return (
    <div class="layout">
      <nav class="nav">
        <span class="brand">Threadline</span>
        {NAV.map((item) => (
          <a
            key={item.label}
            href={href(item.route)}
            class={item.route.page === current ? 'active' : ''}
            data-testid={`nav-${item.route.page}`}
          >
            {item.label}
          </a>
        ))}
        <span class="spacer" />
        <span class="who" data-testid="signed-in-as">
          {caller.role === 'user' ? `user ${caller.userId ?? ''}` : `${caller.role} key`}
        </span>
        <button
          type="button"
          class="link"
          data-testid="sign-out"
          onClick={() => {
            forgetCredential();
            setCaller(undefined);
            setRestoreError(undefined);
          }}
        >
          Sign out
        </button>
      </nav>
      <main class="content">
        <Page caller={caller} route={route} />
      </main>
    </div>
  );
}

const root = document.getElementById('app');
if (root !== null) {
  root.textContent = '';
  render(<App />, root);
}
