import { Field, ID, InputType } from "type-graphql";
import { IsMongoId, Length } from "class-validator";
import { NotBlank } from "../../graphql/validation.js";

@InputType()
export class CreatePostInput {
  @Field()
  @NotBlank()
  @Length(1, 200, { message: "must be between 1 and 200 characters" })
  title!: string;

  @Field()
  @NotBlank()
  @Length(1, 20000, { message: "must be between 1 and 20000 characters" })
  body!: string;
}

@InputType()
export class AddCommentInput {
  @Field(() => ID)
  @IsMongoId({ message: "is not a post id" })
  postId!: string;

  @Field()
  @NotBlank()
  @Length(1, 5000, { message: "must be between 1 and 5000 characters" })
  body!: string;
}
