import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { PasswordHasher } from "../../src/modules/user/password.js";
import { bearerToken, Keyring, TokenService } from "../../src/modules/user/token.service.js";

const USER_ID = "65a1b2c3d4e5f60718293a4b";
const LOGIN_ID = "65a1b2c3d4e5f60718293a4c";

describe("passwords", () => {
  const passwords = new PasswordHasher(1);
  after(() => passwords.close());
  const hashPassword = (password: string) => passwords.hash(password);
  const verifyPassword = (password: string, stored: string) => passwords.verify(password, stored);

  it("verifies the right password and refuses a wrong one", async () => {
    const stored = await hashPassword("correct horse battery");
    assert.match(stored, /^scrypt\$32768\$8\$1\$[\w-]+\$[\w-]+$/);
    assert.equal(await verifyPassword("correct horse battery", stored), true);
    assert.equal(await verifyPassword("correct horse batterY", stored), false);
  });

  it("salts each hash", async () => {
    assert.notEqual(await hashPassword("same"), await hashPassword("same"));
  });

  it("refuses a malformed stored hash instead of throwing", async () => {
    assert.equal(await verifyPassword("x", "md5$abc"), false);
  });
});

describe("tokens", () => {
  const keys = new Keyring("k".repeat(32));
  const tokens = new TokenService(keys, 60);
  const issue = async (service: TokenService, userId = USER_ID, loginId = LOGIN_ID) =>
    (await service.issue(userId, loginId)).token;

  it("round-trips the user and login ids, and says when the token expires", async () => {
    const issued = await tokens.issue(USER_ID, LOGIN_ID);
    const claims = await tokens.verify(issued.token);
    assert.equal(claims?.userId, USER_ID);
    assert.equal(claims?.loginId, LOGIN_ID);
    assert.equal(claims?.expiresAt.getTime(), issued.expiresAt.getTime());
    const ttl = issued.expiresAt.getTime() - Date.now();
    assert.ok(ttl > 55_000 && ttl <= 60_000, `expires in the configured 60 s (${ttl} ms)`);
  });

  it("refuses a token signed with another secret, an expired one and garbage", async () => {
    const other = new TokenService(new Keyring("o".repeat(32)), 60);
    assert.equal(await tokens.verify(await issue(other)), null);
    const expired = new TokenService(keys, -10);
    assert.equal(await tokens.verify(await issue(expired)), null);
    assert.equal(await tokens.verify("a.b.c"), null);
  });

  it("refuses a correctly signed token whose subject or login is not an id", async () => {
    assert.equal(await tokens.verify(await issue(tokens, "not-a-user-id")), null);
    assert.equal(await tokens.verify(await issue(tokens, USER_ID.toUpperCase())), null);
    assert.equal(await tokens.verify(await issue(tokens, USER_ID, "not-a-login")), null);
  });

  it("verifies tokens of a previous secret after a rotation, and stops once it is dropped", async () => {
    const before = await issue(tokens);
    const rotated = new TokenService(new Keyring("n".repeat(32), ["k".repeat(32)]), 60);
    assert.equal((await rotated.verify(before))?.userId, USER_ID, "the old key still verifies");
    assert.equal((await rotated.verify(await issue(rotated)))?.userId, USER_ID, "the new key signs");
    assert.equal(await tokens.verify(await issue(rotated)), null, "a process without the new key refuses");
    const dropped = new TokenService(new Keyring("n".repeat(32)), 60);
    assert.equal(await dropped.verify(before), null);
  });

  it("reads a Bearer header, case-insensitively, and nothing else", () => {
    assert.equal(bearerToken("Bearer abc"), "abc");
    assert.equal(bearerToken("bearer abc"), "abc");
    assert.equal(bearerToken("Basic abc"), undefined);
    assert.equal(bearerToken("Bearer"), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });
});
