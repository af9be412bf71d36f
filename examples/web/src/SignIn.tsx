import { useId, useState, type FormEvent } from "react";
import { useMutation } from "@apollo/client/react";
import { saveSession } from "./auth";
import { LoginDocument, RegisterDocument } from "./generated/graphql";
import { ErrorAlert } from "./ui";

type Mode = "sign-in" | "sign-up";

export function SignIn() {
  const [mode, setMode] = useState<Mode>("sign-in");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [login, loginState] = useMutation(LoginDocument);
  const [register, registerState] = useMutation(RegisterDocument);
  const [error, setError] = useState<unknown>();
  const id = useId();
  const busy = loginState.loading || registerState.loading;
  const signingUp = mode === "sign-up";

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(undefined);
    try {
      if (signingUp) {
        const { data } = await register({ variables: { input: { email, password, displayName } } });
        if (data) saveSession(data.register);
      } else {
        const { data } = await login({ variables: { input: { email, password } } });
        if (data) saveSession(data.login);
      }
    } catch (failure) {
      setError(failure);
    }
  };

  const switchTo = (next: Mode) => {
    setMode(next);
    setError(undefined);
  };

  return (
    <main className="sign-in">
      <h1>Herald</h1>
      <form className="card" onSubmit={(event) => void submit(event)} aria-labelledby={`${id}-title`}>
        <h2 id={`${id}-title`}>{signingUp ? "Create your account" : "Sign in"}</h2>
        <label htmlFor={`${id}-email`}>Email</label>
        <input
          id={`${id}-email`}
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(event) => setEmail(event.target.value)}
        />
        <label htmlFor={`${id}-password`}>Password</label>
        <input
          id={`${id}-password`}
          type="password"
          autoComplete={signingUp ? "new-password" : "current-password"}
          required
          minLength={signingUp ? 8 : undefined}
          value={password}
          onChange={(event) => setPassword(event.target.value)}
        />
        {signingUp && (
          <>
            <label htmlFor={`${id}-name`}>Display name</label>
            <input
              id={`${id}-name`}
              autoComplete="nickname"
              required
              maxLength={80}
              value={displayName}
              onChange={(event) => setDisplayName(event.target.value)}
            />
          </>
        )}
        <ErrorAlert error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {signingUp ? "Sign up" : "Sign in"}
        </button>
      </form>
      <p>
        {signingUp ? "Already have an account? " : "New here? "}
        <button type="button" className="link" onClick={() => switchTo(signingUp ? "sign-in" : "sign-up")}>
          {signingUp ? "Sign in instead" : "Create an account"}
        </button>
      </p>
    </main>
  );
}
