//! Case lists written once: [`cases!`](crate::cases!) defines a module's
//! generic case functions and, from that same list, the macro that stamps
//! them into `#[test]`s and the function that lists them, so a case cannot
//! be defined without being run. `tests/tests/case_lists.rs` checks that
//! every `pub fn name<B: Backend>() {..}` under `tests/src` is in a list.

/// A case's name and its function for one backend.
pub type Case = (&'static str, fn());

/// Defines cases once and derives everything that names them.
///
/// ```ignore
/// crate::cases! {
///     /// Doc of the stamping macro.
///     stamp backend_traces, list cases, path traces;
///
///     /// A case: any `pub fn name<B: Backend>() { .. }` in the block.
///     pub fn trace_fresh_connection<B: Backend>() { .. }
///
///     // Any other item (helpers, consts) passes through unchanged.
///     fn helper() {}
/// }
/// ```
///
/// gives, beside the items:
/// - `pub fn cases<B: Backend>() -> Vec<Case>`: every case, in source order;
/// - `#[macro_export] macro_rules! backend_traces`: `backend_traces!(B)`
///   stamps every case as a `#[test]` calling `$crate::traces::case::<B>()`,
///   and `backend_traces!(@cases B; a, b)` stamps a chosen few.
///
/// The group form joins the case lists of submodules into one list and one
/// stamping macro:
///
/// ```ignore
/// crate::cases! {
///     /// Doc of the stamping macro.
///     stamp backend_suite, list cases, groups;
///     keep_alive => __suite_keep_alive,
///     expect => __suite_expect,
/// }
/// ```
#[macro_export]
macro_rules! cases {
    (
        $(#[$stamp_meta:meta])*
        stamp $stamp:ident, list $list:ident, groups;
        $($group:ident => $group_stamp:ident),* $(,)?
    ) => {
        /// Every case of every group on backend `B`, in group order.
        pub fn $list<B: $crate::backend::Backend>() -> Vec<$crate::cases::Case> {
            let mut all = Vec::new();
            $(all.extend($group::$list::<B>());)*
            all
        }

        $crate::cases!(@groups ($) [$(#[$stamp_meta])*] $stamp; $($group_stamp)*);
    };
    (@groups ($d:tt) [$($stamp_meta:tt)*] $stamp:ident; $($group_stamp:ident)*) => {
        $($stamp_meta)*
        #[macro_export]
        macro_rules! $stamp {
            ($d backend:ty) => {
                $($crate::$group_stamp!($d backend);)*
            };
        }
    };
    (
        $(#[$stamp_meta:meta])*
        stamp $stamp:ident, list $list:ident, path $($path:ident)::+;
        $($items:tt)*
    ) => {
        $crate::cases!(@munch
            [$(#[$stamp_meta])* $stamp, $list, $($path)::+]
            []
            $($items)*
        );
    };
    // The end: the list function and the stamping macro.
    (@munch
        [$(#[$stamp_meta:meta])* $stamp:ident, $list:ident, $($path:ident)::+]
        [$($case:ident)*]
    ) => {
        /// Every case of this module on backend `B`, in source order.
        pub fn $list<B: Backend>() -> Vec<$crate::cases::Case> {
            vec![$((stringify!($case), $case::<B> as fn())),*]
        }

        $crate::cases!(@stamp ($) [$(#[$stamp_meta])*] $stamp, $($path)::+; $($case)*);
    };
    // A case: emit it and remember its name.
    (@munch
        $head:tt
        [$($case:ident)*]
        $(#[$meta:meta])*
        pub fn $name:ident<B: Backend>() $body:block
        $($rest:tt)*
    ) => {
        $(#[$meta])*
        pub fn $name<B: Backend>() $body

        $crate::cases!(@munch $head [$($case)* $name] $($rest)*);
    };
    // Any other item passes through.
    (@munch $head:tt $cases:tt $item:item $($rest:tt)*) => {
        $item

        $crate::cases!(@munch $head $cases $($rest)*);
    };
    (@stamp ($d:tt) [$($stamp_meta:tt)*] $stamp:ident, $($path:ident)::+; $($case:ident)*) => {
        $($stamp_meta)*
        #[macro_export]
        macro_rules! $stamp {
            ($d backend:ty) => {
                $crate::$stamp!(@cases $d backend; $($case),*);
            };
            (@cases $d backend:ty; $d($d case:ident),* $d(,)?) => {
                use $crate::$($path)::+ as $stamp;
                $d(
                    #[test]
                    fn $d case() {
                        $stamp::$d case::<$d backend>();
                    }
                )*
            };
        }
    };
}
