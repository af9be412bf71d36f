import { findBatched, findById, isDuplicateKeyError, type EntityManager } from "../../infra/orm.js";
import { ObjectId } from "@mikro-orm/mongodb";
import { isEmail } from "class-validator";
import { badInput, conflict, unauthenticated } from "../../graphql/errors.js";
import { PASSWORD_MAX, PASSWORD_MIN } from "./user.inputs.js";
import { User } from "./user.entity.js";
import type { PasswordHasher } from "./password.js";
import type { LoginInput, RegisterInput } from "./user.inputs.js";

/** Accounts: sign-up and the password check of a sign-in (SessionService then starts the login). */
export class UserService {
  constructor(private readonly passwords: PasswordHasher) {}

  async register(em: EntityManager, input: RegisterInput): Promise<User> {
    const email = normalizeEmail(input.email);
    const user = new User(email, input.displayName.trim(), await this.passwords.hash(input.password));
    em.persist(user);
    try {
      // The UserSubscriber schedules the welcome job once this write is committed.
      await em.flush();
    } catch (err) {
      if (isDuplicateKeyError(err)) throw conflict("An account with this email already exists", "email");
      throw err;
    }
    return user;
  }

  /** The user whose email and password these are; UNAUTHENTICATED, alike, for either wrong. */
  async login(em: EntityManager, input: LoginInput): Promise<User> {
    const found = await em.findOne(User, { email: normalizeEmail(input.email) });
    const user = found?.deletedAt ? null : found;
    // Checked against a real hash when the email is unknown: the timing does not tell.
    const ok = await this.passwords.verify(input.password, user?.passwordHash ?? (await this.passwords.decoyHash()));
    if (!user || !ok) throw unauthenticated("Email or password is incorrect");
    return user;
  }

  /**
   * Sets a new password once the current one is given. The change is a field change of the user:
   * its security notice and the end of the user's other logins follow from it (see the security
   * module and UserResolver).
   */
  async changePassword(em: EntityManager, userId: string, current: string, next: string): Promise<User> {
    const user = await this.withPassword(em, userId, current, "currentPassword");
    if (next.length < PASSWORD_MIN || next.length > PASSWORD_MAX) {
      throw badInput("newPassword", `must be between ${PASSWORD_MIN} and ${PASSWORD_MAX} characters`);
    }
    user.passwordHash = await this.passwords.hash(next);
    user.passwordChangedAt = new Date();
    await em.flush();
    return user;
  }

  /**
   * Moves the account to another address once the password is given. The same address, whatever
   * its case, changes nothing and tells nobody.
   */
  async changeEmail(em: EntityManager, userId: string, password: string, newEmail: string): Promise<User> {
    const email = normalizeEmail(newEmail);
    if (email.length > 254 || !isEmail(email)) throw badInput("newEmail", "must be a valid email address");
    const user = await this.withPassword(em, userId, password, "password");
    if (user.email === email) return user;
    user.email = email;
    user.emailChangedAt = new Date();
    try {
      await em.flush();
    } catch (err) {
      if (isDuplicateKeyError(err)) throw conflict("An account with this email already exists", "newEmail");
      throw err;
    }
    return user;
  }

  /**
   * Once the password is given, `endLogins`, then marks the account deleted: from then on it is gone
   * for everyone, and its deletion signal schedules the removal of its data (see account.jobs.ts).
   * The logins end first: the removal may start as soon as the mark is committed.
   */
  async deleteAccount(
    em: EntityManager,
    userId: string,
    password: string,
    endLogins: () => Promise<unknown>,
  ): Promise<User> {
    const user = await this.withPassword(em, userId, password, "password");
    await endLogins();
    user.deletedAt = new Date();
    await em.flush();
    return user;
  }

  private async withPassword(em: EntityManager, userId: string, password: string, field: string): Promise<User> {
    const user = await em.findOne(User, { _id: new ObjectId(userId) });
    if (!user || user.deletedAt) throw unauthenticated();
    if (!(await this.passwords.verify(password, user.passwordHash))) throw badInput(field, "is not the password");
    return user;
  }

  /** A deleted account is not found, from the moment it is deleted. */
  async findById(em: EntityManager, id: string): Promise<User | null> {
    return present(await findById(em, User, id));
  }

  /**
   * Like findById, but looked up together with the other users asked for meanwhile: a post pushed
   * to 1,000 subscribers resolves its author's `actor` once per batch, not once per subscriber.
   */
  async lookup(em: EntityManager, id: string): Promise<User | null> {
    return present(await findBatched(em, User, id));
  }
}

function present(user: User | null): User | null {
  return user && !user.deletedAt ? user : null;
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
