import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ParsedMail } from "mailparser";
import {
  ChangeEmailDocument,
  ChangePasswordDocument,
  InboxPageDocument,
  LoginDocument,
  MeDocument,
  RegisterDocument,
  UpdateMyPreferencesDocument,
  type NotificationKind,
} from "../generated/graphql.js";
import { bearer, connectWs, eventually, gql, gqlOk, wsRequest } from "../helpers/graphql-client.js";
import { baseEnv, startHerald, uniqueDatabase, type HeraldProcess } from "../helpers/herald.js";
import { startSmtpServer, type SmtpServer } from "../helpers/smtp.js";

const PASSWORD = "correct horse battery";
const NEW_PASSWORD = "battery staple horse";

const codeOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined | null }) =>
  r.errors?.[0]?.extensions?.["code"];
const fieldOf = (r: { errors?: readonly { extensions?: Record<string, unknown> }[] | undefined | null }) =>
  r.errors?.[0]?.extensions?.["field"];
const to = (m: ParsedMail) => (Array.isArray(m.to) ? m.to[0] : m.to)?.value[0]?.address;

/**
 * Field changes as signals: a password or an email address that really changed tells the owner,
 * in-app and by email, whatever their preferences; a save that changes nothing tells nobody.
 */
describe("security notices for changes to an account", () => {
  let herald: HeraldProcess;
  let smtp: SmtpServer;
  let accounts = 0;

  before(async () => {
    smtp = await startSmtpServer();
    herald = await startHerald({
      ...baseEnv(uniqueDatabase("e2e_account_changes")),
      ROLES: "api,worker",
      SMTP_URL: smtp.url,
      EMAIL_RETRY_DELAY_MS: "100",
    });
  });

  after(async () => {
    assert.equal(await herald.stop(), 0, herald.output());
    await smtp.stop();
  });

  async function newAccount(name: string) {
    accounts += 1;
    const email = `${name}.${accounts}.${Date.now()}@example.com`;
    const { register } = await gqlOk(herald.url, RegisterDocument, {
      input: { email, password: PASSWORD, displayName: name },
    });
    return { email, token: register.token, id: register.user.id };
  }

  /** The titles of the user's notices of `kind`, once there are `count`. */
  async function notices(token: string, kind: NotificationKind, count: number): Promise<string[]> {
    return eventually(
      async () => {
        const page = await gqlOk(herald.url, InboxPageDocument, { first: 50 }, bearer(token));
        const found = page.notifications.edges.filter((e) => e.node.kind === kind).map((e) => e.node.title);
        return found.length >= count ? found : undefined;
      },
      { timeoutMs: 10_000, what: `${count} ${kind} notices` },
    );
  }

  it("tells of a new password in-app and by email, and signs the other devices out", async () => {
    const user = await newAccount("changer");
    const phone = (await gqlOk(herald.url, LoginDocument, { input: { email: user.email, password: PASSWORD } })).login;
    const phoneSocket = connectWs(herald.url, bearer(phone.token));
    assert.ok((await wsRequest(phoneSocket.client, MeDocument)).data?.me);

    const changed = await gqlOk(
      herald.url,
      ChangePasswordDocument,
      { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
      bearer(user.token),
    );
    assert.equal(changed.changePassword, true);
    assert.equal(await phoneSocket.closed, 4403, "the other login's socket closes");
    await phoneSocket.dispose();
    assert.equal((await gql(herald.url, MeDocument, {}, bearer(phone.token))).status, 401);
    assert.equal((await gqlOk(herald.url, MeDocument, {}, bearer(user.token))).me?.id, user.id, "this login lives on");

    assert.deepEqual(await notices(user.token, "PASSWORD_CHANGED" as const, 1), ["Your password was changed"]);
    const mail = await smtp.waitFor(
      (m) => to(m) === user.email && /password was changed/.test(m.subject ?? ""),
      10_000,
    );
    assert.doesNotMatch(mail.text ?? "", /Stop these emails/, "a security notice cannot be unsubscribed from");
    assert.equal(mail.headers.get("list-unsubscribe"), undefined);

    const oldRefused = await gql(herald.url, LoginDocument, { input: { email: user.email, password: PASSWORD } });
    assert.equal(codeOf(oldRefused), "UNAUTHENTICATED");
    assert.ok((await gqlOk(herald.url, LoginDocument, { input: { email: user.email, password: NEW_PASSWORD } })).login);
  });

  it("refuses a wrong current password, and changes and tells nothing", async () => {
    const user = await newAccount("guesser");
    const refused = await gql(
      herald.url,
      ChangePasswordDocument,
      { currentPassword: "not the password", newPassword: NEW_PASSWORD },
      bearer(user.token),
    );
    assert.equal(codeOf(refused), "BAD_USER_INPUT");
    assert.equal(fieldOf(refused), "currentPassword");
    assert.ok((await gqlOk(herald.url, LoginDocument, { input: { email: user.email, password: PASSWORD } })).login);
    const short = await gql(
      herald.url,
      ChangePasswordDocument,
      { currentPassword: PASSWORD, newPassword: "short" },
      bearer(user.token),
    );
    assert.equal(fieldOf(short), "newPassword");
  });

  it("tells the old address of a new one, partly hidden, and the new address signs in", async () => {
    const user = await newAccount("mover");
    const newEmail = `moved.${Date.now()}@example.org`;
    const moved = await gqlOk(herald.url, ChangeEmailDocument, { password: PASSWORD, newEmail }, bearer(user.token));
    assert.equal(moved.changeEmail.email, newEmail);

    assert.deepEqual(await notices(user.token, "EMAIL_CHANGED" as const, 1), ["Your email address was changed"]);
    const mail = await smtp.waitFor((m) => /email address was changed/.test(m.subject ?? "") && to(m) === user.email);
    assert.match(mail.text ?? "", /m\*\*\*@example\.org/, "the new address, partly hidden");
    assert.doesNotMatch(mail.text ?? "", new RegExp(newEmail.replace(/\./g, "\\.")), "never in full");
    assert.ok(!smtp.received.some((m) => to(m) === newEmail && /email address/.test(m.subject ?? "")));

    assert.ok((await gqlOk(herald.url, LoginDocument, { input: { email: newEmail, password: PASSWORD } })).login);
    assert.equal(
      codeOf(await gql(herald.url, LoginDocument, { input: { email: user.email, password: PASSWORD } })),
      "UNAUTHENTICATED",
    );
  });

  it("tells nobody of a save that changes nothing: the same address, whatever its case", async () => {
    const user = await newAccount("stayer");
    const same = await gqlOk(
      herald.url,
      ChangeEmailDocument,
      { password: PASSWORD, newEmail: user.email.toUpperCase() },
      bearer(user.token),
    );
    assert.equal(same.changeEmail.email, user.email);
    // A real change afterwards: its notice is the only one, so the no-op made none.
    const newEmail = `really.moved.${Date.now()}@example.org`;
    await gqlOk(herald.url, ChangeEmailDocument, { password: PASSWORD, newEmail }, bearer(user.token));
    const told = await notices(user.token, "EMAIL_CHANGED" as const, 1);
    assert.equal(told.length, 1);
    const mails = smtp.received.filter(
      (m) => to(m) === user.email && /email address was changed/.test(m.subject ?? ""),
    );
    await eventually(() => Promise.resolve(mails.length <= 1 ? true : undefined), {
      timeoutMs: 1000,
      what: "one email",
    });
  });

  it("refuses another account's address with CONFLICT, and a wrong password with BAD_USER_INPUT", async () => {
    const [user, other] = [await newAccount("taker"), await newAccount("owner")];
    const taken = await gql(
      herald.url,
      ChangeEmailDocument,
      { password: PASSWORD, newEmail: other.email },
      bearer(user.token),
    );
    assert.equal(codeOf(taken), "CONFLICT", herald.output().slice(-3000));
    assert.equal(fieldOf(taken), "newEmail");
    const wrong = await gql(
      herald.url,
      ChangeEmailDocument,
      { password: "nope nope", newEmail: "x@example.com" },
      bearer(user.token),
    );
    assert.equal(fieldOf(wrong), "password");
    const invalid = await gql(
      herald.url,
      ChangeEmailDocument,
      { password: PASSWORD, newEmail: "not an email" },
      bearer(user.token),
    );
    assert.equal(fieldOf(invalid), "newEmail");
  });

  it("keeps security notices on: they cannot be turned off, in-app or by email", async () => {
    const user = await newAccount("muter");
    for (const change of [
      { kind: "PASSWORD_CHANGED" as const, email: false },
      { kind: "EMAIL_CHANGED" as const, inApp: false },
      { kind: "PASSWORD_CHANGED" as const, digest: true },
    ]) {
      const refused = await gql(
        herald.url,
        UpdateMyPreferencesDocument,
        { input: { kinds: [change] } },
        bearer(user.token),
      );
      assert.equal(codeOf(refused), "BAD_USER_INPUT", JSON.stringify(change));
    }
  });
});
