import { useCallback, useSyncExternalStore } from "react";

export const VIEWS = ["inbox", "preferences", "reminders", "social"] as const;
export type View = (typeof VIEWS)[number];

export const VIEW_LABELS: Record<View, string> = {
  inbox: "Inbox",
  preferences: "Preferences",
  reminders: "Reminders",
  social: "Social",
};

function currentView(): View {
  const hash = location.hash.slice(1);
  return (VIEWS as readonly string[]).includes(hash) ? (hash as View) : "inbox";
}

function subscribe(listener: () => void): () => void {
  window.addEventListener("hashchange", listener);
  return () => window.removeEventListener("hashchange", listener);
}

/** The view named by the address's hash (#inbox, #preferences, …): links, reloads and Back just work. */
export function useView(): [View, (view: View) => void] {
  const view = useSyncExternalStore(subscribe, currentView);
  const go = useCallback((next: View) => {
    location.hash = next;
  }, []);
  return [view, go];
}
