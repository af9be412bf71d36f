import { useId } from "react";
import { useApolloClient, useMutation, useQuery } from "@apollo/client/react";
import {
  PreferencesDocument,
  UnreadCountDocument,
  UpdatePreferencesDocument,
  type DigestFrequency,
  type NotificationKind,
  type PreferencesFieldsFragment,
  type PreferencesInput,
} from "./generated/graphql";
import { reloadInbox } from "./inbox/cache";
import { KIND_LABELS } from "./labels";
import { ErrorAlert } from "./ui";

type Channel = "inApp" | "email" | "digest";

const CHANNELS: { field: Channel; label: string }[] = [
  { field: "inApp", label: "In app" },
  { field: "email", label: "Email" },
  { field: "digest", label: "Digest" },
];

const DIGESTS: { value: DigestFrequency; label: string }[] = [
  { value: "OFF", label: "Off" },
  { value: "HOURLY", label: "Hourly" },
  { value: "DAILY", label: "Daily" },
];

const SECURITY_NOTICES: NotificationKind[] = ["PASSWORD_CHANGED", "EMAIL_CHANGED"];

/** What the server refuses to change (docs/api.md, updatePreferences), shown disabled rather than refused. */
function locked(kind: NotificationKind, channel: Channel): boolean {
  if (SECURITY_NOTICES.includes(kind)) return true;
  return channel === "inApp" && (kind === "SYSTEM" || kind === "DIGEST");
}

export function PreferencesView() {
  const client = useApolloClient();
  const { data, error } = useQuery(PreferencesDocument);
  const [update, updating] = useMutation(UpdatePreferencesDocument);
  const id = useId();
  const preferences = data?.preferences;

  const save = (next: PreferencesFieldsFragment, input: PreferencesInput, then?: () => void) => {
    // Apollo adds __typename to what it reads, so `next` normalizes like the server's answer would:
    // the checkbox follows the click at once instead of after the round trip.
    update({ variables: { input }, optimisticResponse: { updatePreferences: next } }).then(then, () => undefined);
  };

  const setChannel = (kind: NotificationKind, field: Channel, on: boolean) => {
    if (!preferences) return;
    const kinds = preferences.kinds.map((k) => (k.kind === kind ? { ...k, [field]: on } : k));
    save({ ...preferences, kinds }, { kinds: [{ kind, [field]: on }] }, () => {
      // Hiding or showing a kind in-app changes what the inbox lists and counts.
      if (field !== "inApp") return;
      reloadInbox(client).catch(() => undefined);
      client.refetchQueries({ include: [UnreadCountDocument] }).catch(() => undefined);
    });
  };

  const setDigest = (digest: DigestFrequency) => {
    if (preferences) save({ ...preferences, digest }, { digest });
  };

  return (
    <section aria-labelledby="preferences-heading">
      <h2 id="preferences-heading">Preferences</h2>
      <ErrorAlert error={error ?? updating.error} />
      {preferences && (
        <>
          <table className="preferences" aria-describedby={`${id}-note`}>
            <caption>How each kind of notification reaches you</caption>
            <thead>
              <tr>
                <th scope="col">Kind</th>
                {CHANNELS.map((channel) => (
                  <th scope="col" key={channel.field}>
                    {channel.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {preferences.kinds.map((k) => (
                <tr key={k.kind}>
                  <th scope="row">{KIND_LABELS[k.kind]}</th>
                  {CHANNELS.map((channel) => (
                    <td key={channel.field}>
                      <input
                        type="checkbox"
                        aria-label={`${channel.label} for ${KIND_LABELS[k.kind]}`}
                        checked={k[channel.field]}
                        disabled={locked(k.kind, channel.field)}
                        onChange={(event) => setChannel(k.kind, channel.field, event.target.checked)}
                      />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
          <p id={`${id}-note`} className="hint">
            System notices always show in the app, and security notices (password or email changed) always reach you at
            once. Digest: gathered into the digest email while the digest is on.
          </p>
          <div className="field">
            <label htmlFor={`${id}-digest`}>Email digest</label>
            <select
              id={`${id}-digest`}
              value={preferences.digest}
              onChange={(event) => setDigest(event.target.value as DigestFrequency)}
            >
              {DIGESTS.map((d) => (
                <option key={d.value} value={d.value}>
                  {d.label}
                </option>
              ))}
            </select>
          </div>
        </>
      )}
    </section>
  );
}
