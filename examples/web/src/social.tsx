import { useId, useState, type FormEvent } from "react";
import { useMutation, useQuery } from "@apollo/client/react";
import { CreatePostDocument, FollowDocument, MeDocument } from "./generated/graphql";
import { ErrorAlert, Note, TitleAndBody } from "./ui";

function FollowForm() {
  const id = useId();
  const [userId, setUserId] = useState("");
  const [note, setNote] = useState("");
  const [follow, { loading, error }] = useMutation(FollowDocument);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setNote("");
    const { data } = await follow({ variables: { userId: userId.trim() } }).catch(() => ({ data: undefined }));
    if (!data) return;
    setNote(`You follow ${data.follow.displayName}.`);
    setUserId("");
  };

  return (
    <form className="card" aria-labelledby={`${id}-title`} onSubmit={(event) => void submit(event)}>
      <h3 id={`${id}-title`}>Follow a user by id</h3>
      <label htmlFor={`${id}-user`}>User id</label>
      <input
        id={`${id}-user`}
        required
        autoComplete="off"
        spellCheck={false}
        value={userId}
        onChange={(event) => setUserId(event.target.value)}
      />
      <ErrorAlert error={error} />
      <Note>{note}</Note>
      <button type="submit" className="primary" disabled={loading}>
        Follow
      </button>
    </form>
  );
}

function PostComposer() {
  const id = useId();
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [note, setNote] = useState("");
  const [createPost, { loading, error }] = useMutation(CreatePostDocument);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setNote("");
    const { data } = await createPost({ variables: { input: { title, body } } }).catch(() => ({ data: undefined }));
    if (!data) return;
    setNote(`Published "${data.createPost.title}": your followers are notified.`);
    setTitle("");
    setBody("");
  };

  return (
    <form className="card" aria-labelledby={`${id}-title`} onSubmit={(event) => void submit(event)}>
      <h3 id={`${id}-title`}>Write a post</h3>
      <TitleAndBody title={title} onTitle={setTitle} body={body} onBody={setBody} bodyMaxLength={20000} rows={4} />
      <ErrorAlert error={error} />
      <Note>{note}</Note>
      <button type="submit" className="primary" disabled={loading}>
        Publish post
      </button>
    </form>
  );
}

/** For demos: two accounts following each other make NEW_FOLLOWER and NEW_POST notifications. */
export function SocialView() {
  const { data, error } = useQuery(MeDocument);
  const me = data?.me;
  return (
    <section aria-labelledby="social-heading">
      <h2 id="social-heading">Social</h2>
      <ErrorAlert error={error} />
      {me && (
        <>
          <p>
            Your user id: <code className="user-id">{me.id}</code>
          </p>
          <p className="hint">
            {me.followerCount} {me.followerCount === 1 ? "follower" : "followers"}. Give your id to someone to be
            followed; follow theirs to hear of their posts.
          </p>
        </>
      )}
      <div className="columns">
        <FollowForm />
        <PostComposer />
      </div>
    </section>
  );
}
