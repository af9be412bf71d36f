import { useEffect, useLayoutEffect, useRef } from "react";

/**
 * Infinite scroll: the next page loads as this comes near the viewport. The button does the same
 * for keyboards, and for browsers without IntersectionObserver.
 */
export function LoadMore({ onLoad, busy, cursor }: { onLoad: () => void; busy: boolean; cursor: string | null }) {
  const sentinel = useRef<HTMLDivElement>(null);
  const load = useRef(onLoad);
  useLayoutEffect(() => {
    load.current = onLoad;
  });

  // A new observer per page: it reports at once whether the sentinel is still in view after the
  // page arrived, so a tall screen keeps loading until it is full.
  useEffect(() => {
    const element = sentinel.current;
    if (!element || typeof IntersectionObserver === "undefined") return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting)) load.current();
      },
      { rootMargin: "200px" },
    );
    observer.observe(element);
    return () => observer.disconnect();
  }, [cursor]);

  return (
    <div ref={sentinel} className="load-more">
      <button type="button" onClick={onLoad} disabled={busy} aria-busy={busy}>
        Load more
      </button>
    </div>
  );
}
