import { useId, useState, type FormEvent } from "react";
import type { Reference } from "@apollo/client";
import { useMutation, useQuery } from "@apollo/client/react";
import { CancelReminderDocument, RemindersDocument, ScheduleReminderDocument } from "./generated/graphql";
import { formatTime } from "./labels";
import { ErrorAlert, Note, TitleAndBody } from "./ui";

/** A datetime-local value (local time, to the minute) some minutes from now. */
function localInputValue(minutesAhead: number): string {
  const date = new Date(Date.now() + minutesAhead * 60_000);
  date.setSeconds(0, 0);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

function ScheduleForm({ onScheduled }: { onScheduled: (title: string) => void }) {
  const id = useId();
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [sendAt, setSendAt] = useState(() => localInputValue(10));
  const [schedule, { loading, error }] = useMutation(ScheduleReminderDocument, {
    refetchQueries: [RemindersDocument],
    awaitRefetchQueries: true,
  });

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    // datetime-local is the user's local time; the API wants an instant.
    const input = { title, body, sendAt: new Date(sendAt).toISOString() };
    const { data } = await schedule({ variables: { input } }).catch(() => ({ data: undefined }));
    if (!data) return;
    onScheduled(data.scheduleReminder.title);
    setTitle("");
    setBody("");
  };

  return (
    <form className="card" aria-labelledby={`${id}-title`} onSubmit={(event) => void submit(event)}>
      <h3 id={`${id}-title`}>Schedule a reminder</h3>
      <TitleAndBody title={title} onTitle={setTitle} body={body} onBody={setBody} bodyMaxLength={5000} rows={3} />
      <label htmlFor={`${id}-send-at`}>Send at</label>
      <input
        id={`${id}-send-at`}
        type="datetime-local"
        required
        value={sendAt}
        onChange={(event) => setSendAt(event.target.value)}
      />
      <ErrorAlert error={error} />
      <button type="submit" className="primary" disabled={loading}>
        Schedule reminder
      </button>
    </form>
  );
}

export function RemindersView() {
  const { data, error } = useQuery(RemindersDocument);
  const [note, setNote] = useState("");
  const [cancel, cancelling] = useMutation(CancelReminderDocument, {
    // Pending or not (false: it fired or was cancelled elsewhere), it is no longer pending.
    update: (cache, _result, { variables }) => {
      if (!variables) return;
      const ref = cache.identify({ __typename: "Reminder", id: variables.id });
      cache.modify<{ reminders: unknown }>({
        id: "ROOT_QUERY",
        fields: {
          reminders: (value, { readField }) =>
            Array.isArray(value)
              ? (value as Reference[]).filter((item) => readField("id", item) !== variables.id)
              : value,
        },
      });
      cache.evict({ id: ref });
      cache.gc();
    },
  });
  const reminders = data?.reminders;

  return (
    <section aria-labelledby="reminders-heading">
      <h2 id="reminders-heading">Reminders</h2>
      <ErrorAlert error={error ?? cancelling.error} />
      <Note>{note}</Note>
      <ul aria-label="Pending reminders" className="reminders">
        {reminders?.map((reminder) => (
          <li key={reminder.id}>
            <div>
              <h3>{reminder.title}</h3>
              <p>{reminder.body}</p>
              <p className="meta">
                <time dateTime={reminder.sendAt}>{formatTime(reminder.sendAt)}</time>
              </p>
            </div>
            <button
              type="button"
              aria-label={`Cancel "${reminder.title}"`}
              disabled={cancelling.loading}
              onClick={() => {
                setNote("");
                cancel({ variables: { id: reminder.id } })
                  .then(({ data: result }) =>
                    setNote(
                      result?.cancelReminder
                        ? `Cancelled "${reminder.title}".`
                        : `"${reminder.title}" had already been sent.`,
                    ),
                  )
                  .catch(() => undefined);
              }}
            >
              Cancel
            </button>
          </li>
        ))}
      </ul>
      {reminders?.length === 0 && <p className="empty">No pending reminders.</p>}
      <ScheduleForm onScheduled={(title) => setNote(`Scheduled "${title}".`)} />
    </section>
  );
}
