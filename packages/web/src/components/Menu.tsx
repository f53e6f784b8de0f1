import { useEffect, useId, useLayoutEffect, useRef, useState, type ReactNode } from 'react';
import { createPortal } from 'react-dom';

export interface MenuItem {
  label: string;
  onSelect: () => void;
  disabled?: boolean;
  /** Why a disabled item is disabled, shown on hover. */
  title?: string;
  danger?: boolean;
}

/** Where an open menu sits on screen: under its button, or above it near the bottom edge. */
interface Place {
  right: number;
  top?: number;
  bottom?: number;
}

/**
 * A kebab (⋮) button opening a menu: arrow keys move, Enter selects, Escape, Tab and clicks
 * outside close, focus returns to the button. The menu is drawn over the page (a portal
 * placed by the button), so a scrolling table or a short card never cuts it off.
 */
export function KebabMenu({ label, items }: { label: string; items: MenuItem[] }) {
  const [open, setOpen] = useState(false);
  const [place, setPlace] = useState<Place | undefined>();
  const button = useRef<HTMLButtonElement>(null);
  const menu = useRef<HTMLDivElement>(null);
  const id = useId();

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
    const first = menu.current?.querySelector<HTMLButtonElement>(
      '[role="menuitem"]:not([disabled])',
    );
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
      ...(menu.current?.querySelectorAll<HTMLButtonElement>('[role="menuitem"]:not([disabled])') ??
        []),
    ];
    const i = nodes.indexOf(document.activeElement as HTMLButtonElement);
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
        className="icon-btn kebab"
        aria-label={label}
        aria-haspopup="menu"
        aria-expanded={open}
        aria-controls={open ? id : undefined}
        onClick={(e) => {
          e.stopPropagation();
          setOpen((o) => !o);
        }}
      >
        <span aria-hidden="true">⋮</span>
      </button>
      {open
        ? createPortal(
            <div
              ref={menu}
              id={id}
              role="menu"
              aria-label={label}
              className="menu"
              style={place ?? { visibility: 'hidden', top: 0, right: 0 }}
              onKeyDown={onKeyDown}
            >
              {items.map((item) => (
                <button
                  key={item.label}
                  type="button"
                  role="menuitem"
                  disabled={item.disabled}
                  title={item.title}
                  className={item.danger ? 'danger' : undefined}
                  onClick={(e) => {
                    e.stopPropagation();
                    close();
                    item.onSelect();
                  }}
                >
                  {item.label}
                </button>
              ))}
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
