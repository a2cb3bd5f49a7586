//! Reordering a slice in place by a permutation of its positions: how the
//! spec's mappings and the plan's changes are put in order without a second
//! copy of their items (a fleet has tens of thousands of each).

/// Reorders `items` in place so that position `i` holds what was at
/// `order[i]` (`order` is a permutation of the positions): one swap per
/// item, a cycle at a time.
pub(crate) fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..items.len() {
        let mut current = start;
        while order[current] != start {
            let next = order[current];
            items.swap(current, next);
            order[current] = current;
            current = next;
        }
        order[current] = current;
    }
}

#[cfg(test)]
mod tests {
    use super::permute;

    #[test]
    fn permute_moves_each_item_to_its_place() {
        let orders: [&[usize]; 4] = [&[], &[0, 1, 2], &[2, 0, 1], &[3, 2, 0, 1, 5, 4]];
        for order in orders {
            let items: Vec<char> = ('a'..).take(order.len()).collect();
            let expect: Vec<char> = order.iter().map(|&i| items[i]).collect();
            let mut moved = items.clone();
            permute(&mut moved, order.to_vec());
            assert_eq!(moved, expect, "order {order:?}");
        }
    }
}
