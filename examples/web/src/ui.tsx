import { useId, type ReactNode } from "react";
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

/** A title and a body, labelled, as a reminder and a post both have (limits as the API's). */
export function TitleAndBody(props: {
  title: string;
  onTitle: (value: string) => void;
  body: string;
  onBody: (value: string) => void;
  bodyMaxLength: number;
  rows: number;
}) {
  const id = useId();
  return (
    <>
      <label htmlFor={`${id}-title`}>Title</label>
      <input
        id={`${id}-title`}
        required
        maxLength={200}
        value={props.title}
        onChange={(event) => props.onTitle(event.target.value)}
      />
      <label htmlFor={`${id}-body`}>Body</label>
      <textarea
        id={`${id}-body`}
        required
        maxLength={props.bodyMaxLength}
        rows={props.rows}
        value={props.body}
        onChange={(event) => props.onBody(event.target.value)}
      />
    </>
  );
}
