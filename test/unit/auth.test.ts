import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { PasswordHasher } from "../../src/modules/user/password.js";
import { bearerToken, TokenService } from "../../src/modules/user/token.service.js";

const USER_ID = "65a1b2c3d4e5f60718293a4b";

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
  const tokens = new TokenService("k".repeat(32), 60);

  it("round-trips the user id", async () => {
    const claims = await tokens.verify(await tokens.issue(USER_ID));
    assert.equal(claims?.userId, USER_ID);
    const ttl = (claims?.expiresAt.getTime() ?? 0) - Date.now();
    assert.ok(ttl > 55_000 && ttl <= 60_000, `expires in the configured 60 s (${ttl} ms)`);
  });

  it("refuses a token signed with another secret, an expired one and garbage", async () => {
    const other = new TokenService("o".repeat(32), 60);
    assert.equal(await tokens.verify(await other.issue(USER_ID)), null);
    const expired = new TokenService("k".repeat(32), -10);
    assert.equal(await tokens.verify(await expired.issue(USER_ID)), null);
    assert.equal(await tokens.verify("a.b.c"), null);
  });

  it("refuses a correctly signed token whose subject is not a user id", async () => {
    assert.equal(await tokens.verify(await tokens.issue("not-a-user-id")), null);
    assert.equal(await tokens.verify(await tokens.issue(USER_ID.toUpperCase())), null);
  });

  it("reads a Bearer header, case-insensitively, and nothing else", () => {
    assert.equal(bearerToken("Bearer abc"), "abc");
    assert.equal(bearerToken("bearer abc"), "abc");
    assert.equal(bearerToken("Basic abc"), undefined);
    assert.equal(bearerToken("Bearer"), undefined);
    assert.equal(bearerToken(undefined), undefined);
  });
});
