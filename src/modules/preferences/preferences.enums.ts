import { registerEnumType } from "type-graphql";

export enum DigestFrequency {
  OFF = "OFF",
  HOURLY = "HOURLY",
  DAILY = "DAILY",
}

registerEnumType(DigestFrequency, { name: "DigestFrequency" });
