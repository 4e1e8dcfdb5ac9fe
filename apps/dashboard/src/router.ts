import { useEffect, useState } from 'preact/hooks';

/**
 * The dashboard's pages, addressed by the URL's fragment (`/dashboard/#/users/u1`), so every page is
 * the same `index.html` and a reload or a shared link opens the same page. Credentials never go here.
 */
export type Route =
  | { page: 'overview' }
  | { page: 'users' }
  | { page: 'user'; userId: string }
  | { page: 'session'; sessionId: string }
  | { page: 'usage' }
  | { page: 'system' };

/** The route of a fragment (`#/sessions/abc`); unknown fragments are the overview. */
export function parseRoute(hash: string): Route {
  const parts = hash
    .replace(/^#\/?/, '')
    .split('?')[0]!
    .split('/')
    .filter((p) => p !== '')
    .map((p) => decodeURIComponent(p));
  const [first, second] = parts;
  if (first === 'users' && second !== undefined) return { page: 'user', userId: second };
  if (first === 'users') return { page: 'users' };
  if (first === 'sessions' && second !== undefined) return { page: 'session', sessionId: second };
  if (first === 'usage') return { page: 'usage' };
  if (first === 'system') return { page: 'system' };
  return { page: 'overview' };
}

/** The fragment of a route, for links. */
export function href(route: Route): string {
  switch (route.page) {
    case 'overview':
      return '#/';
    case 'users':
      return '#/users';
    case 'user':
      return `#/users/${encodeURIComponent(route.userId)}`;
    case 'session':
      return `#/sessions/${encodeURIComponent(route.sessionId)}`;
    case 'usage':
      return '#/usage';
    case 'system':
      return '#/system';
    default: {
      const never: never = route;
      return never;
    }
  }
}

/** The current route, following `hashchange`. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
