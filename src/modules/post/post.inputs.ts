import { Field, ID, InputType } from "type-graphql";
import { IsMongoId, IsOptional } from "class-validator";
import { Text } from "../../graphql/validation.js";

@InputType()
export class CreatePostInput {
  @Field()
  @Text(200)
  title!: string;

  @Field()
  @Text(20000)
  body!: string;
}

@InputType({ description: "What to change in a post: the fields given; the others stay." })
export class UpdatePostInput {
  @Field({ nullable: true })
  @IsOptional()
  @Text(200)
  title?: string;

  @Field({ nullable: true })
  @IsOptional()
  @Text(20000)
  body?: string;
}

@InputType()
export class AddCommentInput {
  @Field(() => ID)
  @IsMongoId({ message: "is not a post id" })
  postId!: string;

  @Field()
  @Text(5000)
  body!: string;
}
