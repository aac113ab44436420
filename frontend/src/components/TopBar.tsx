import type { ReactNode } from "react";

/** The dashboard's name, and on the right what `children` brings (the connection's state). */
export function TopBar({ children }: { children: ReactNode }) {
  return (
    <header className="topbar">
      <div className="brand">
        <span className="logo" aria-hidden="true">
          <svg viewBox="0 0 24 24" width="22" height="22">
            <path d="M3 12h4l3-8 4 16 3-8h4" fill="none" stroke="currentColor" strokeWidth="2.2" strokeLinecap="round" strokeLinejoin="round" />
          </svg>
        </span>
        <div>
          <h1>orders-live</h1>
          <p className="subtitle">Every order change, the moment it commits</p>
        </div>
      </div>
      {children}
    </header>
  );
}
