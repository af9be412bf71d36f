import { useEffect, useState, useSyncExternalStore } from "react";
import { useApolloClient } from "@apollo/client/react";
import { clearSession, keepSessionFresh, type Session } from "./auth";
import type { Connection, HeraldClient } from "./client";
import { LogoutDocument } from "./generated/graphql";
import { Bell } from "./inbox/Bell";
import { InboxView } from "./inbox/InboxView";
import { followInbox } from "./live";
import { useView, VIEW_LABELS, VIEWS } from "./navigation";
import { PreferencesView } from "./preferences";
import { RemindersView } from "./reminders";
import { SocialView } from "./social";

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  offline: "Offline: reconnecting…",
} as const;

function ConnectionStatus({ connection }: { connection: Connection }) {
  const state = useSyncExternalStore(connection.subscribe, connection.get);
  return (
    <p role="status" className={`connection ${state}`}>
      {CONNECTION_TEXT[state]}
    </p>
  );
}

export function SignedIn({ herald, session }: { herald: HeraldClient; session: Session }) {
  const client = useApolloClient();
  const [view, go] = useView();

  // The views wait for the inbox's first read, which fills the cache they read from.
  const [started, setStarted] = useState(false);
  useEffect(() => followInbox(client, () => setStarted(true)), [client]);
  useEffect(() => keepSessionFresh(session), [session]);

  const showInbox = () => {
    go("inbox");
    // The bell's job is to bring the inbox up; put keyboard and screen reader users there too.
    requestAnimationFrame(() => document.getElementById("inbox-heading")?.focus());
  };

  const signOut = async () => {
    try {
      await client.mutate({ mutation: LogoutDocument });
    } catch {
      // Offline, or the login already ended: forgetting the tokens here is what matters.
    }
    clearSession();
  };

  return (
    <div className="app">
      <header className="topbar">
        <h1>Herald</h1>
        <ConnectionStatus connection={herald.connection} />
        <div className="account">
          <Bell onClick={showInbox} ready={started} />
          <span className="who">{session.user.displayName}</span>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <nav aria-label="Sections" className="tabs">
        {VIEWS.map((name) => (
          <a key={name} href={`#${name}`} aria-current={view === name ? "page" : undefined}>
            {VIEW_LABELS[name]}
          </a>
        ))}
      </nav>
      <main>
        {view === "inbox" && (started ? <InboxView /> : <p aria-busy="true">Loading your inbox…</p>)}
        {view === "preferences" && <PreferencesView />}
        {view === "reminders" && <RemindersView />}
        {view === "social" && <SocialView />}
      </main>
    </div>
  );
}
