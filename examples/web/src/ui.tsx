import type { ReactNode } from "react";
import { describeError } from "./errors";

/** An API or network error, read out as soon as it appears. */
export function ErrorAlert({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p role="alert" className="error">
      {describeError(error)}
    </p>
  );
}

/**
 * A success note, announced politely. The region stays in the page while empty: screen readers
 * only announce changes to live regions they already know. (role="status" is kept for the
 * connection state alone, so it is easy to find.)
 */
export function Note({ children }: { children?: ReactNode }) {
  return (
    <p aria-live="polite" className="note">
      {children}
    </p>
  );
}
