import { findBatched, findById, isDuplicateKeyError, type EntityManager } from "../../infra/orm.js";
import { conflict, unauthenticated } from "../../graphql/errors.js";
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
    const user = await em.findOne(User, { email: normalizeEmail(input.email) });
    // Checked against a real hash when the email is unknown: the timing does not tell.
    const ok = await this.passwords.verify(input.password, user?.passwordHash ?? (await this.passwords.decoyHash()));
    if (!user || !ok) throw unauthenticated("Email or password is incorrect");
    return user;
  }

  async findById(em: EntityManager, id: string): Promise<User | null> {
    return findById(em, User, id);
  }

  /**
   * Like findById, but looked up together with the other users asked for meanwhile: a post pushed
   * to 1,000 subscribers resolves its author's `actor` once per batch, not once per subscriber.
   */
  lookup(em: EntityManager, id: string): Promise<User | null> {
    return findBatched(em, User, id);
  }
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
