import { Length, Matches } from "class-validator";

/** Text that must say something: whitespace alone is refused, as an empty string is. */
export const NotBlank = () => Matches(/\S/, { message: "must not be blank" });

/** Text of 1 to `max` characters that is not only whitespace: titles, bodies, names. */
export function Text(max: number): PropertyDecorator {
  const notBlank = NotBlank();
  const length = Length(1, max, { message: `must be between 1 and ${max} characters` });
  return (target, key) => {
    notBlank(target, key);
    length(target, key);
  };
}
