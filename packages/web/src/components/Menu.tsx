import { useEffect, useId, useLayoutEffect, useRef, useState, type ReactNode } from 'react';
import { createPortal } from 'react-dom';

/** An item of a menu: an action, or a link (a download) the browser follows itself. */
export type MenuItem = {
  label: string;
  /** Why a disabled item is disabled, or what a link holds, shown on hover. */
  title?: string;
  danger?: boolean;
} & (
  | { onSelect: () => void; disabled?: boolean; href?: never }
  | {
      href: string;
      /** Saved as a file (its name from the server's Content-Disposition), not opened. */
      download?: boolean;
      onSelect?: never;
      disabled?: never;
    }
);

/** Where an open menu sits on screen: under its button, or above it near the bottom edge. */
interface Place {
  right: number;
  top?: number;
  bottom?: number;
}

/**
 * A kebab (⋮) button opening a menu (`MenuButton`), named by `label` alone.
 * @example <KebabMenu label="Actions for run r-1" items={[{ label: 'Retry', onSelect: retry }]} />
 */
export function KebabMenu({ label, items }: { label: string; items: MenuItem[] }) {
  return (
    <MenuButton label={label} items={items} className="icon-btn kebab">
      <span aria-hidden="true">⋮</span>
    </MenuButton>
  );
}

/**
 * A button opening a menu: arrow keys move, Enter selects, Escape, Tab and clicks outside
 * close, focus returns to the button. The menu is drawn over the page (a portal placed by the
 * button), so a scrolling table or a short card never cuts it off. A `note` under the items
 * says what they all share (what a download holds); each item is described by it.
 * @example <MenuButton label="Export runs" className="btn btn-small" items={[{ label: 'CSV', href: '/runs.csv', download: true }]}>Export</MenuButton>
 */
export function MenuButton({
  label,
  items,
  className,
  note,
  disabled,
  title,
  children,
}: {
  /** Names the menu, and the button (which should show these words, or only an icon). */
  label: string;
  items: MenuItem[];
  /** The button's classes. */
  className: string;
  note?: string;
  disabled?: boolean;
  /** Why the button is disabled, or what its menu does, shown on hover. */
  title?: string;
  /** What the button shows. */
  children: ReactNode;
}) {
  const [open, setOpen] = useState(false);
  const [place, setPlace] = useState<Place | undefined>();
  const button = useRef<HTMLButtonElement>(null);
  const menu = useRef<HTMLDivElement>(null);
  const id = useId();
  const noteId = useId();

  // placed by its button, and kept by it while the page scrolls or resizes
  useLayoutEffect(() => {
    if (!open) {
      setPlace(undefined);
      return;
    }
    const placeMenu = () => {
      if (!button.current) return;
      const b = button.current.getBoundingClientRect();
      const height = menu.current?.offsetHeight ?? 0;
      const right = Math.max(4, window.innerWidth - b.right);
      // below the button when it fits, else above it
      if (b.bottom + 4 + height <= window.innerHeight || b.top - 4 - height < 0)
        setPlace({ right, top: b.bottom + 4 });
      else setPlace({ right, bottom: window.innerHeight - b.top + 4 });
    };
    placeMenu();
    window.addEventListener('scroll', placeMenu, true);
    window.addEventListener('resize', placeMenu);
    return () => {
      window.removeEventListener('scroll', placeMenu, true);
      window.removeEventListener('resize', placeMenu);
    };
  }, [open]);

  const placed = place !== undefined;
  useEffect(() => {
    // once placed: a hidden menu cannot take focus
    if (!open || !placed) return;
    const first = menu.current?.querySelector<HTMLElement>('[role="menuitem"]:not([disabled])');
    first?.focus();
    const onDown = (e: PointerEvent) => {
      if (
        !menu.current?.contains(e.target as Node) &&
        !button.current?.contains(e.target as Node)
      ) {
        setOpen(false);
      }
    };
    document.addEventListener('pointerdown', onDown);
    return () => document.removeEventListener('pointerdown', onDown);
  }, [open, placed]);

  const close = (focus = true) => {
    setOpen(false);
    if (focus) button.current?.focus();
  };

  const onKeyDown = (e: React.KeyboardEvent) => {
    const nodes = [
      ...(menu.current?.querySelectorAll<HTMLElement>('[role="menuitem"]:not([disabled])') ?? []),
    ];
    const i = nodes.indexOf(document.activeElement as HTMLElement);
    if (e.key === 'Escape') {
      e.preventDefault();
      close();
    } else if (e.key === 'ArrowDown') {
      e.preventDefault();
      nodes[(i + 1) % nodes.length]?.focus();
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      nodes[(i - 1 + nodes.length) % nodes.length]?.focus();
    } else if (e.key === 'Tab') {
      // the menu sits at the end of the page (a portal): Tab would leave for the page's end
      e.preventDefault();
      close();
    }
  };

  return (
    <div className="menu-wrap">
      <button
        ref={button}
        type="button"
        className={className}
        aria-label={label}
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={open ? id : undefined}
        disabled={disabled}
        title={title}
        onClick={(e) => {
          e.stopPropagation();
          setOpen((o) => !o);
        }}
      >
        {children}
      </button>
      {open
        ? createPortal(
            <div
              ref={menu}
              className="menu"
              style={place ?? { visibility: 'hidden', top: 0, right: 0 }}
            >
              {/* a menu holds only its items: the note sits beside it and describes them */}
              <div id={id} role="menu" aria-label={label} onKeyDown={onKeyDown}>
                {items.map((item) => {
                  const common = {
                    role: 'menuitem',
                    title: item.title,
                    className: item.danger ? 'danger' : undefined,
                    'aria-describedby': note ? noteId : undefined,
                  } as const;
                  return item.href !== undefined ? (
                    <a
                      key={item.label}
                      {...common}
                      href={item.href}
                      download={item.download}
                      onClick={(e) => {
                        e.stopPropagation();
                        // after the browser follows the link: a link taken off the page
                        // before then is not followed (a detached link cannot navigate)
                        window.setTimeout(() => close(), 0);
                      }}
                    >
                      {item.label}
                    </a>
                  ) : (
                    <button
                      key={item.label}
                      {...common}
                      type="button"
                      disabled={item.disabled}
                      onClick={(e) => {
                        e.stopPropagation();
                        close();
                        item.onSelect();
                      }}
                    >
                      {item.label}
                    </button>
                  );
                })}
              </div>
              {note ? (
                <p id={noteId} className="menu-note">
                  {note}
                </p>
              ) : null}
            </div>,
            document.body,
          )
        : null}
    </div>
  );
}

/** A labelled group of controls that reads as one line. */
export function Toolbar({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div className="toolbar" role="toolbar" aria-label={label}>
      {children}
    </div>
  );
}
