import { type Ref, useId } from "react";
import { capitalize } from "../format";
import { STATUSES } from "../protocol";
import type { FieldErrors } from "../validation";

/** The order fields a form can show (the keys of `FieldErrors` other than the form-wide one). */
export type FieldName = Exclude<keyof FieldErrors, "form">;

export interface FieldOption {
  value: string;
  label: string;
}

/** The choices of an order's status field. */
export const STATUS_OPTIONS: readonly FieldOption[] = STATUSES.map((s) => ({ value: s, label: capitalize(s) }));

interface CommonProps {
  label: string;
  name: FieldName;
  value: string;
  onChange: (value: string) => void;
  /** Shown under the control, tied to it by `aria-describedby`, and marks it `aria-invalid`. */
  error?: string;
  /** Extra class on the wrapper (for example `field-status`). */
  className?: string;
}

interface TextProps extends CommonProps {
  options?: undefined;
  placeholder?: string;
  ref?: Ref<HTMLInputElement>;
}

interface SelectProps extends CommonProps {
  /** A select with these choices instead of a text input. */
  options: readonly FieldOption[];
  placeholder?: undefined;
  ref?: undefined;
}

/**
 * One labelled form control with its error message: a text input, or a select when `options` is
 * given. Both the new-order form and a table row's edit form are made of these.
 */
export function Field({ label, name, value, onChange, error, className, options, placeholder, ref }: TextProps | SelectProps) {
  const id = useId();
  const errorId = `${id}-error`;
  const aria = {
    id,
    name,
    "aria-invalid": error ? true : undefined,
    "aria-describedby": error ? errorId : undefined,
  };
  return (
    <div className={className ? `field ${className}` : "field"}>
      <label htmlFor={id}>{label}</label>
      {options ? (
        <select {...aria} value={value} onChange={(e) => onChange(e.target.value)}>
          {options.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </select>
      ) : (
        <input
          {...aria}
          ref={ref}
          autoComplete="off"
          value={value}
          placeholder={placeholder}
          onChange={(e) => onChange(e.target.value)}
        />
      )}
      {error && (
        <p className="field-error" id={errorId} data-field-error={name}>
          {error}
        </p>
      )}
    </div>
  );
}
