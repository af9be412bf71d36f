import { ArrayMaxSize, ArrayUnique } from "class-validator";
import { Field, InputType, ObjectType } from "type-graphql";
import { NotificationKind } from "../notification/notification.enums.js";
import { DigestFrequency } from "./preferences.enums.js";

@ObjectType()
export class KindPreference {
  @Field(() => NotificationKind)
  kind!: NotificationKind;

  @Field({
    description:
      "Shown in the inbox and pushed live. Off, the notification is still stored for its email, if one goes out. " +
      "SYSTEM cannot be turned off in-app.",
  })
  inApp!: boolean;

  @Field({ description: "Emailed one by one (unless gathered into the digest)." })
  email!: boolean;

  @Field({ description: "Gathered into the digest email while the digest is on." })
  digest!: boolean;
}

@ObjectType()
export class Preferences {
  @Field(() => [KindPreference])
  kinds!: KindPreference[];

  @Field(() => DigestFrequency)
  digest!: DigestFrequency;
}

@InputType()
export class KindPreferenceInput {
  @Field(() => NotificationKind)
  kind!: NotificationKind;

  @Field(() => Boolean, { nullable: true })
  inApp?: boolean | null;

  @Field(() => Boolean, { nullable: true })
  email?: boolean | null;

  @Field(() => Boolean, { nullable: true })
  digest?: boolean | null;
}

@InputType()
export class PreferencesInput {
  @Field(() => [KindPreferenceInput], { nullable: true, description: "Only the kinds and fields given change." })
  @ArrayMaxSize(20, { message: "must list each kind at most once" })
  @ArrayUnique((k: KindPreferenceInput) => k.kind, { message: "must list each kind at most once" })
  kinds?: KindPreferenceInput[] | null;

  @Field(() => DigestFrequency, { nullable: true })
  digest?: DigestFrequency | null;
}
