import { useEffect, useState, useSyncExternalStore } from "react";
import { ApolloProvider } from "@apollo/client/react";
import { getSession, subscribeSession } from "./auth";
import { createHeraldClient, type HeraldClient } from "./client";
import { SignIn } from "./SignIn";
import { SignedIn } from "./SignedIn";

/**
 * One Apollo Client (and cache, and socket) per signed-in user, and one for signing in: whoever
 * signs in or out, here or in another tab, starts from an empty cache, and the previous user's
 * socket is closed.
 */
export function App() {
  const session = useSyncExternalStore(subscribeSession, getSession);
  const identity = session?.user.id ?? "";
  const [herald, setHerald] = useState<{ identity: string; client: HeraldClient }>();

  useEffect(() => {
    const client = createHeraldClient();
    setHerald({ identity, client });
    return () => client.dispose();
  }, [identity]);

  if (!herald || herald.identity !== identity) return null;
  return (
    <ApolloProvider client={herald.client.client}>
      {session ? <SignedIn herald={herald.client} session={session} /> : <SignIn />}
    </ApolloProvider>
  );
}
