import { ObjectId } from "@mikro-orm/mongodb";
import { GroupCommit } from "../../infra/group-commit.js";
import { findById, isDuplicateKeyError, type EntityManager } from "../../infra/orm.js";
import { conflict, unauthenticated } from "../../graphql/errors.js";
import { User } from "./user.entity.js";
import type { PasswordHasher } from "./password.js";
import type { LoginInput, RegisterInput } from "./user.inputs.js";
import type { TokenService } from "./token.service.js";

export interface Session {
  token: string;
  user: User;
}

export class UserService {
  constructor(
    private readonly tokens: TokenService,
    private readonly passwords: PasswordHasher,
  ) {}

  async register(em: EntityManager, input: RegisterInput): Promise<Session> {
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
    return { token: await this.tokens.issue(user.id), user };
  }

  async login(em: EntityManager, input: LoginInput): Promise<Session> {
    const user = await em.findOne(User, { email: normalizeEmail(input.email) });
    // Checked against a real hash when the email is unknown: the timing does not tell.
    const ok = await this.passwords.verify(input.password, user?.passwordHash ?? (await this.passwords.decoyHash()));
    if (!user || !ok) throw unauthenticated("Email or password is incorrect");
    return { token: await this.tokens.issue(user.id), user };
  }

  async findById(em: EntityManager, id: string): Promise<User | null> {
    return findById(em, User, id);
  }

  /**
   * Like findById, but looked up together with the other users asked for meanwhile: a post pushed
   * to 1,000 subscribers resolves its author's `actor` once per batch, not once per subscriber.
   */
  lookup(em: EntityManager, id: string): Promise<User | null> {
    return this.lookups.submit({ em, id });
  }

  private readonly lookups = new GroupCommit<{ em: EntityManager; id: string }, User | null>(
    async (items) => {
      const first = items[0];
      if (!first) return [];
      const em = first.em.fork();
      const ids = [...new Set(items.map((i) => i.id))].filter((id) => ObjectId.isValid(id));
      const [only] = ids;
      const found =
        ids.length === 1 && only
          ? [await findById(em, User, only)].filter((u) => u !== null)
          : await em.find(User, { _id: { $in: ids.map((id) => new ObjectId(id)) } });
      const byId = new Map(found.map((u) => [u.id, u]));
      return items.map((i) => byId.get(i.id) ?? null);
    },
    { maxItems: 1000, parallel: 2 },
  );
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}
