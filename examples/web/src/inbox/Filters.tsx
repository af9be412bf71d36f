import type { NotificationKind, NotificationStatus } from "../generated/graphql";
import { KIND_LABELS, KINDS } from "../labels";
import type { InboxFilter } from "./cache";

const STATUSES: { value: NotificationStatus; label: string }[] = [
  { value: "ALL", label: "All" },
  { value: "UNREAD", label: "Unread" },
  { value: "READ", label: "Read" },
];

export function Filters({ value, onChange }: { value: InboxFilter; onChange: (filter: InboxFilter) => void }) {
  const kinds = value.kinds ?? [];
  const toggleKind = (kind: NotificationKind, on: boolean) => {
    const next = on ? [...kinds, kind] : kinds.filter((k) => k !== kind);
    onChange({ ...value, kinds: next.length ? next.sort() : null });
  };

  return (
    <div className="filters">
      <fieldset>
        <legend>Status</legend>
        {STATUSES.map((status) => (
          <label key={status.value}>
            <input
              type="radio"
              name="inbox-status"
              value={status.value}
              checked={value.status === status.value}
              onChange={() => onChange({ ...value, status: status.value })}
            />
            {status.label}
          </label>
        ))}
      </fieldset>
      <fieldset>
        <legend>Show</legend>
        <label>
          <input
            type="checkbox"
            checked={value.archived}
            onChange={(event) => onChange({ ...value, archived: event.target.checked })}
          />
          Archived
        </label>
      </fieldset>
      <fieldset className="kinds">
        <legend>Kinds (none checked: all)</legend>
        {KINDS.map((kind) => (
          <label key={kind}>
            <input
              type="checkbox"
              checked={kinds.includes(kind)}
              onChange={(event) => toggleKind(kind, event.target.checked)}
            />
            {KIND_LABELS[kind]}
          </label>
        ))}
      </fieldset>
    </div>
  );
}
