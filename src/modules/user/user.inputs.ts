import { Field, InputType } from "type-graphql";
import { IsEmail, IsNotEmpty, Length, MaxLength } from "class-validator";
import { Text } from "../../graphql/validation.js";

export const PASSWORD_MIN = 8;
export const PASSWORD_MAX = 128;

@InputType()
export class RegisterInput {
  @Field()
  @MaxLength(254, { message: "must be at most 254 characters" })
  @IsEmail({}, { message: "must be a valid email address" })
  email!: string;

  @Field()
  @Length(PASSWORD_MIN, PASSWORD_MAX, {
    message: `must be between ${PASSWORD_MIN} and ${PASSWORD_MAX} characters`,
  })
  password!: string;

  @Field()
  @Text(80)
  displayName!: string;
}

@InputType()
export class LoginInput {
  @Field()
  @IsNotEmpty({ message: "is required" })
  @MaxLength(254, { message: "must be at most 254 characters" })
  email!: string;

  @Field()
  @IsNotEmpty({ message: "is required" })
  @MaxLength(PASSWORD_MAX, { message: `must be at most ${PASSWORD_MAX} characters` })
  password!: string;
}
