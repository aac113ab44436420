import { useCallback, useEffect, useRef, useState } from "react";
import "./Notices.css";

export interface Notice {
  id: number;
  tone: "error" | "info";
  text: string;
}

/** How long a notice stays unless dismissed (errors longer, to be read). */
const SHOWN_MS: Record<Notice["tone"], number> = { error: 12_000, info: 6_000 };
/** At most this many notices at once (the oldest goes). */
const KEPT = 4;

export type Notify = (tone: Notice["tone"], text: string) => void;

/**
 * The transient notices of this tab: `notify` adds one, which leaves by itself after a while.
 * Ids come from this instance, and every pending timer is cleared on dismiss and on unmount.
 */
export function useNotices() {
  const [notices, setNotices] = useState<Notice[]>([]);
  const lastId = useRef(0);
  const timers = useRef(new Map<number, ReturnType<typeof setTimeout>>());

  const dismiss = useCallback((id: number) => {
    clearTimeout(timers.current.get(id));
    timers.current.delete(id);
    setNotices((list) => list.filter((n) => n.id !== id));
  }, []);

  const notify = useCallback<Notify>(
    (tone, text) => {
      const id = ++lastId.current;
      setNotices((list) => [...list.slice(1 - KEPT), { id, tone, text }]);
      timers.current.set(
        id,
        setTimeout(() => dismiss(id), SHOWN_MS[tone]),
      );
    },
    [dismiss],
  );

  useEffect(() => {
    const pending = timers.current;
    return () => {
      for (const timer of pending.values()) clearTimeout(timer);
      pending.clear();
    };
  }, []);

  return { notices, notify, dismiss };
}

interface Props {
  notices: readonly Notice[];
  onDismiss: (id: number) => void;
}

export function Notices({ notices, onDismiss }: Props) {
  return (
    <div className="notices" aria-live="polite">
      {notices.map((notice) => (
        <div key={notice.id} className={`notice notice-${notice.tone}`} role={notice.tone === "error" ? "alert" : "status"}>
          <span>{notice.text}</span>
          <button type="button" className="notice-close" aria-label="Dismiss" onClick={() => onDismiss(notice.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
