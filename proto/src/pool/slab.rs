//! How the pool keeps its entries so that every step is constant time: a
//! slab (a vector of reusable slots), lists linked through the slots, and a
//! binary heap of slots that knows where each of them sits.
//!
//! An entry (an idle connection, a waiter) lives in one slot of a [`Slab`]
//! and is named by the slot's index. It carries the links of every [`List`]
//! it is on (one [`Links`] per list kind, picked by the const parameter `C`
//! of [`Linked`]), so it is unlinked from the middle of a list in constant
//! time, with no search. A freed slot goes to a free list and is reused by
//! the next insert: once the slab has grown to its largest size, inserting
//! and removing allocate nothing.
//!
//! Indices are checked, not trusted blindly: indexing a free slot panics
//! (a bug, never input: every index the pool holds is of an occupied slot).

use alloc::vec::Vec;
use core::ops::{Index, IndexMut};

use crate::time::Instant;

/// No slot: the end of a list, or "not in the heap".
pub(super) const NIL: usize = usize::MAX;

enum Slot<T> {
    Used(T),
    /// Free; the next free slot (or [`NIL`]).
    Free(usize),
}

/// Entries in reusable slots, named by index.
pub(super) struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// The first free slot, or [`NIL`].
    free: usize,
    len: usize,
}

impl<T> Slab<T> {
    pub(super) const fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: NIL,
            len: 0,
        }
    }

    /// Entries held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Stores `value` in a free slot (a new one if none is free); its index.
    pub(super) fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        if self.free == NIL {
            self.slots.push(Slot::Used(value));
            return self.slots.len() - 1;
        }
        let at = self.free;
        match core::mem::replace(&mut self.slots[at], Slot::Used(value)) {
            Slot::Free(next) => self.free = next,
            Slot::Used(_) => unreachable!("the free list holds only free slots"),
        }
        at
    }

    /// Takes the entry out of slot `at`, which becomes free.
    pub(super) fn remove(&mut self, at: usize) -> T {
        // Every index the pool removes names an occupied slot.
        assert!(
            matches!(self.slots[at], Slot::Used(_)),
            "slab: slot {at} is free"
        );
        match core::mem::replace(&mut self.slots[at], Slot::Free(self.free)) {
            Slot::Used(value) => {
                self.free = at;
                self.len -= 1;
                value
            }
            Slot::Free(_) => unreachable!("checked above"),
        }
    }

    /// Every entry with its index.
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| match s {
            Slot::Used(value) => Some((i, value)),
            Slot::Free(_) => None,
        })
    }
}

impl<T> Index<usize> for Slab<T> {
    type Output = T;
    fn index(&self, at: usize) -> &T {
        match &self.slots[at] {
            Slot::Used(value) => value,
            // Every index the pool keeps names an occupied slot.
            Slot::Free(_) => panic!("slab: slot {at} is free"),
        }
    }
}

impl<T> IndexMut<usize> for Slab<T> {
    fn index_mut(&mut self, at: usize) -> &mut T {
        match &mut self.slots[at] {
            Slot::Used(value) => value,
            // As for `index`.
            Slot::Free(_) => panic!("slab: slot {at} is free"),
        }
    }
}

/// An entry's neighbours on one list: `prev` towards the front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Links {
    pub(super) prev: usize,
    pub(super) next: usize,
}

impl Links {
    /// On no list.
    pub(super) const NONE: Links = Links {
        prev: NIL,
        next: NIL,
    };
}

/// An entry that can be on lists of kind `C`.
pub(super) trait Linked<const C: usize> {
    fn links(&self) -> &Links;
    fn links_mut(&mut self) -> &mut Links;
}

/// A doubly linked list of slab entries of kind `C`, front to back.
#[derive(Debug)]
pub(super) struct List<const C: usize> {
    front: usize,
    back: usize,
    len: usize,
}

impl<const C: usize> List<C> {
    pub(super) const fn new() -> Self {
        List {
            front: NIL,
            back: NIL,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn front(&self) -> Option<usize> {
        (self.front != NIL).then_some(self.front)
    }

    pub(super) fn back(&self) -> Option<usize> {
        (self.back != NIL).then_some(self.back)
    }

    /// Links slot `at` (on no list of kind `C`) in at the front.
    pub(super) fn push_front<T: Linked<C>>(&mut self, slab: &mut Slab<T>, at: usize) {
        let old = self.front;
        *slab[at].links_mut() = Links {
            prev: NIL,
            next: old,
        };
        match old {
            NIL => self.back = at,
            old => slab[old].links_mut().prev = at,
        }
        self.front = at;
        self.len += 1;
    }

    /// Links slot `at` (on no list of kind `C`) in at the back.
    pub(super) fn push_back<T: Linked<C>>(&mut self, slab: &mut Slab<T>, at: usize) {
        let old = self.back;
        *slab[at].links_mut() = Links {
            prev: old,
            next: NIL,
        };
        match old {
            NIL => self.front = at,
            old => slab[old].links_mut().next = at,
        }
        self.back = at;
        self.len += 1;
    }

    /// Takes slot `at`, which is on this list, off it.
    pub(super) fn unlink<T: Linked<C>>(&mut self, slab: &mut Slab<T>, at: usize) {
        let Links { prev, next } = *slab[at].links();
        *slab[at].links_mut() = Links::NONE;
        match prev {
            NIL => self.front = next,
            prev => slab[prev].links_mut().next = next,
        }
        match next {
            NIL => self.back = prev,
            next => slab[next].links_mut().prev = prev,
        }
        self.len -= 1;
    }

    /// The slots front to back, checking every link both ways. For invariant
    /// checks: panics if the list is inconsistent.
    #[cfg(any(test, fuzzing))]
    pub(super) fn checked<T: Linked<C>>(&self, slab: &Slab<T>) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.len);
        let (mut prev, mut at) = (NIL, self.front);
        while at != NIL {
            assert!(out.len() < self.len, "list longer than its length");
            let links = slab[at].links();
            assert_eq!(links.prev, prev, "slot {at}: broken back link");
            out.push(at);
            (prev, at) = (at, links.next);
        }
        assert_eq!(prev, self.back, "list back");
        assert_eq!(out.len(), self.len, "list length");
        out
    }
}

/// An entry that can be in heaps of kind `C`, ordered by `due` (the
/// instant, then a tie-break that makes the order total).
pub(super) trait Timed<const C: usize> {
    fn due(&self) -> (Instant, u64);
    /// Its index in the heap's vector, or [`NIL`] when not in the heap.
    fn place(&self) -> usize;
    fn place_mut(&mut self) -> &mut usize;
}

/// A heap item: when its entry is due (a copy, so that comparing two items
/// reads the heap's vector only), and the entry's slot.
#[derive(Clone, Copy, Debug)]
struct Item {
    due: (Instant, u64),
    at: usize,
}

/// A binary min-heap of slab entries by `due`, each entry knowing its place:
/// push, remove (from anywhere) and pop are O(log n), the earliest is O(1).
/// An entry's `due` must not change while it is in the heap.
#[derive(Debug)]
pub(super) struct Heap<const C: usize> {
    items: Vec<Item>,
}

impl<const C: usize> Heap<C> {
    pub(super) const fn new() -> Self {
        Heap { items: Vec::new() }
    }

    /// The entry due first.
    pub(super) fn first(&self) -> Option<usize> {
        self.items.first().map(|item| item.at)
    }

    pub(super) fn push<T: Timed<C>>(&mut self, slab: &mut Slab<T>, at: usize) {
        let place = self.items.len();
        self.items.push(Item {
            due: slab[at].due(),
            at,
        });
        *slab[at].place_mut() = place;
        self.sift_up(slab, place);
    }

    /// Takes slot `at`, which is in this heap, out of it.
    pub(super) fn remove<T: Timed<C>>(&mut self, slab: &mut Slab<T>, at: usize) {
        let place = slab[at].place();
        *slab[at].place_mut() = NIL;
        let Some(last) = self.items.pop() else {
            unreachable!("slot {at} is in the heap, so the heap is not empty")
        };
        if place < self.items.len() {
            // `at` was not the last item: the last one fills its place.
            self.items[place] = last;
            *slab[last.at].place_mut() = place;
            let place = self.sift_up(slab, place);
            self.sift_down(slab, place);
        }
    }

    fn swap<T: Timed<C>>(&mut self, slab: &mut Slab<T>, a: usize, b: usize) {
        self.items.swap(a, b);
        *slab[self.items[a].at].place_mut() = a;
        *slab[self.items[b].at].place_mut() = b;
    }

    /// Moves the item at `place` up while it is due before its parent;
    /// returns where it ends.
    fn sift_up<T: Timed<C>>(&mut self, slab: &mut Slab<T>, mut place: usize) -> usize {
        while place > 0 {
            let parent = (place - 1) / 2;
            if self.items[place].due >= self.items[parent].due {
                break;
            }
            self.swap(slab, place, parent);
            place = parent;
        }
        place
    }

    fn sift_down<T: Timed<C>>(&mut self, slab: &mut Slab<T>, mut place: usize) {
        loop {
            let (left, right) = (2 * place + 1, 2 * place + 2);
            let mut first = place;
            for child in [left, right] {
                if child < self.items.len() && self.items[child].due < self.items[first].due {
                    first = child;
                }
            }
            if first == place {
                return;
            }
            self.swap(slab, place, first);
            place = first;
        }
    }

    /// The slots in the heap, checking the heap order, every entry's place
    /// and its due copy. For invariant checks: panics if the heap is
    /// inconsistent.
    #[cfg(any(test, fuzzing))]
    pub(super) fn checked<T: Timed<C>>(&self, slab: &Slab<T>) -> Vec<usize> {
        for (place, item) in self.items.iter().enumerate() {
            let at = item.at;
            assert_eq!(slab[at].place(), place, "slot {at}: wrong heap place");
            assert_eq!(slab[at].due(), item.due, "slot {at}: due changed");
            if place > 0 {
                let parent = (place - 1) / 2;
                assert!(self.items[parent].due <= item.due, "heap order");
            }
        }
        self.items.iter().map(|item| item.at).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    struct E {
        due: u64,
        links: Links,
        place: usize,
    }

    impl Linked<0> for E {
        fn links(&self) -> &Links {
            &self.links
        }
        fn links_mut(&mut self) -> &mut Links {
            &mut self.links
        }
    }

    impl Timed<0> for E {
        fn due(&self) -> (Instant, u64) {
            (Instant::from_origin(Duration::from_secs(self.due)), 0)
        }
        fn place(&self) -> usize {
            self.place
        }
        fn place_mut(&mut self) -> &mut usize {
            &mut self.place
        }
    }

    fn e(due: u64) -> E {
        E {
            due,
            links: Links::NONE,
            place: NIL,
        }
    }

    #[test]
    fn slab_reuses_freed_slots() {
        let mut slab = Slab::new();
        let (a, b) = (slab.insert(1), slab.insert(2));
        assert_eq!(slab.remove(a), 1);
        assert_eq!(slab.insert(3), a, "the freed slot is reused");
        assert_eq!((slab[a], slab[b], slab.len()), (3, 2, 2));
    }

    #[test]
    #[should_panic(expected = "is free")]
    fn slab_refuses_a_free_slot() {
        let mut slab = Slab::new();
        let a = slab.insert(1);
        slab.remove(a);
        slab.remove(a);
    }

    #[test]
    fn list_unlinks_anywhere() {
        let mut slab = Slab::new();
        let mut list = List::<0>::new();
        let at: Vec<usize> = (0..4).map(|i| slab.insert(e(i))).collect();
        for &i in &at {
            list.push_front(&mut slab, i);
        }
        assert_eq!(list.checked(&slab), [at[3], at[2], at[1], at[0]]);
        list.unlink(&mut slab, at[2]);
        list.unlink(&mut slab, at[0]);
        list.push_back(&mut slab, at[0]);
        assert_eq!(list.checked(&slab), [at[3], at[1], at[0]]);
        for i in [at[3], at[0], at[1]] {
            list.unlink(&mut slab, i);
        }
        assert!(list.is_empty() && list.front().is_none() && list.back().is_none());
    }

    #[test]
    fn heap_removes_from_the_middle() {
        let mut slab = Slab::new();
        let mut heap = Heap::<0>::new();
        let dues = [5, 3, 8, 1, 9, 2, 7, 3, 6];
        let at: Vec<usize> = dues.iter().map(|&d| slab.insert(e(d))).collect();
        for &i in &at {
            heap.push(&mut slab, i);
            heap.checked(&slab);
        }
        heap.remove(&mut slab, at[2]); // 8
        heap.remove(&mut slab, at[3]); // 1
        heap.checked(&slab);
        let mut order = Vec::new();
        while let Some(first) = heap.first() {
            heap.remove(&mut slab, first);
            heap.checked(&slab);
            order.push(slab[first].due);
        }
        assert_eq!(order, [2, 3, 3, 5, 6, 7, 9]);
        assert!(at.iter().all(|&i| slab[i].place == NIL));
    }
}
