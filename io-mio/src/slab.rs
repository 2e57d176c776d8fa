//! A slab: values in a `Vec`, addressed by index, with freed slots reused.
//! Connections are indexed by their `mio::Token`, exchanges by their
//! `RequestId`; a slot's owner also keeps a serial number, so that a timer
//! or an id that outlived its value is recognised when the slot is reused.

pub(crate) struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Stores `value` and returns its slot.
    pub fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(slot) => {
                self.entries[slot] = Some(value);
                slot
            }
            None => {
                self.entries.push(Some(value));
                self.entries.len() - 1
            }
        }
    }

    /// Inserts the value `make` builds, written straight into its slot (an
    /// exchange is over a kilobyte: passed by value it was copied twice).
    pub fn insert_with(&mut self, make: impl FnOnce() -> T) -> usize {
        self.len += 1;
        match self.free.pop() {
            Some(slot) => {
                self.entries[slot] = Some(make());
                slot
            }
            None => {
                self.entries.push(Some(make()));
                self.entries.len() - 1
            }
        }
    }

    /// Takes the value out of `slot`, freeing it.
    pub fn remove(&mut self, slot: usize) -> Option<T> {
        let value = self.entries.get_mut(slot)?.take()?;
        self.free.push(slot);
        self.len -= 1;
        Some(value)
    }

    /// Drops the value in `slot` where it lies (no move out), freeing it.
    pub fn discard(&mut self, slot: usize) {
        if let Some(entry) = self.entries.get_mut(slot).filter(|e| e.is_some()) {
            *entry = None;
            self.free.push(slot);
            self.len -= 1;
        }
    }

    /// Once the slab holds nothing, gives back the memory of the slots
    /// beyond the first `keep` (slots are numbered from 0 again). Otherwise
    /// a slab keeps the size of its busiest moment: 10,000 exchanges in
    /// flight once left 19 MB of empty slots to a driver with nothing in
    /// flight.
    pub fn release_if_empty(&mut self, keep: usize) {
        if self.len == 0 && self.entries.capacity() > keep {
            self.entries.clear();
            self.entries.shrink_to(keep);
            self.free.clear();
            self.free.shrink_to(keep);
        }
    }

    pub fn get(&self, slot: usize) -> Option<&T> {
        self.entries.get(slot)?.as_ref()
    }

    pub fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.entries.get_mut(slot)?.as_mut()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn slots_are_reused() {
        let mut slab = Slab::new();
        let (a, b) = (slab.insert("a"), slab.insert("b"));
        assert_eq!((a, b, slab.len()), (0, 1, 2));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.insert("c"), a);
        assert_eq!(slab.get(a), Some(&"c"));
        assert_eq!(slab.get(7), None);
    }

    #[test]
    fn an_empty_slab_gives_back_its_slots() {
        let mut slab = Slab::new();
        let slots: Vec<usize> = (0..100).map(|n| slab.insert(n)).collect();
        slab.release_if_empty(8); // not empty: kept
        assert_eq!(slab.get(99), Some(&99));
        for slot in slots {
            slab.remove(slot);
        }
        slab.release_if_empty(8);
        assert!(slab.entries.capacity() <= 8 && slab.free.is_empty());
        assert_eq!((slab.insert(7), slab.get(99)), (0, None));
    }
}
