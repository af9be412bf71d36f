import { Matches } from "class-validator";

/** Text that must say something: whitespace alone is refused, as an empty string is. */
export const NotBlank = () => Matches(/\S/, { message: "must not be blank" });
